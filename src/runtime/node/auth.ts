import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context } from 'hono';
import { readFile } from 'node:fs/promises';
import { authSettings, isLoopback, parseTrustedHosts, readTokens, type AuthSettings } from '../../core/auth.js';
import type { ServeConfig } from '../../core/config.js';
import { ConfigError, describe } from '../../core/errors.js';
import type { Logger } from '../../core/ports.js';
import { createTokensReloader, type TokensReloader } from './tokens.js';

export interface NodeAuth extends Pick<TokensReloader, 'reload' | 'watch'> {
  readonly settings: AuthSettings;
}

/**
 * `serve`'s auth options: reads `--tokens-file`, merges `--tokens`, takes `--trusted-hosts`, and refuses what
 * `authSettings` refuses. The returned reloader re-reads `--tokens-file` (SIGHUP, and on change once watching).
 */
export async function loadNodeAuth(config: ServeConfig, logger: Logger): Promise<NodeAuth> {
  const path = config['tokens-file'];
  let file: { path: string; text: string } | undefined;
  if (path !== undefined) {
    try {
      file = { path, text: await readFile(path, 'utf8') };
    } catch (err) {
      throw new ConfigError([`--tokens-file: cannot read ${path}: ${describe(err)}`]);
    }
  }
  const tokens = readTokens({
    ...(config.tokens !== undefined ? { list: config.tokens } : {}),
    ...(file ? { file } : {}),
  });
  const auth = authSettings({
    host: config.host,
    tokens,
    insecureNoAuth: config['insecure-no-auth'],
    openSmartProxy: config['open-smart-proxy'],
    trustedHosts: parseTrustedHosts(config['trusted-hosts'] ?? ''),
    failureLimit: config['auth-failure-limit'],
  });
  const https = config['https-port'] !== undefined;
  logger.info('authentication', {
    tokens: tokens.length,
    nativeApi: auth.requireToken ? 'bearer token' : 'open',
    // Over plain HTTP; over HTTPS a client certificate whose CN is one of trustedHosts.
    smartProxy: auth.openSmartProxy ? 'open' : 'loopback-only',
    ...(https ? { trustedHosts: auth.trustedHosts } : {}),
    failureLimit: auth.failureLimit,
  });
  if (!auth.requireToken && !isLoopback(config.host))
    logger.warn('--insecure-no-auth: the native API is open to the network without tokens', { host: config.host });
  if (auth.openSmartProxy && config.http)
    logger.warn(
      https
        ? '--open-smart-proxy: the HTTP listener accepts smart-proxy routes from any client without a certificate; ' +
            'use --no-http to require one'
        : '--open-smart-proxy: smart-proxy routes accept any client; restrict who can reach this port',
    );
  const reloader = createTokensReloader({
    file,
    list: config.tokens,
    tokens: auth.tokens,
    insecureNoAuth: config['insecure-no-auth'],
    logger,
  });
  return { settings: auth, reload: reloader.reload, watch: reloader.watch };
}

/** The peer of a request served by @hono/node-server; `undefined` outside it (e.g. `app.request()` in tests). */
export function nodeRemoteAddress(c: Context): string | undefined {
  const env = c.env as { incoming?: unknown; server?: { incoming?: unknown } } | undefined;
  if (!env?.incoming && !env?.server?.incoming) return undefined;
  return getConnInfo(c).remote.address;
}
