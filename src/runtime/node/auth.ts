import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context } from 'hono';
import { readFile } from 'node:fs/promises';
import { authSettings, isLoopback, readTokens, type AuthSettings } from '../../core/auth.js';
import type { ServeConfig } from '../../core/config.js';
import { ConfigError, describe } from '../../core/errors.js';
import type { Logger } from '../../core/ports.js';

/** `serve`'s auth options: reads `--tokens-file`, merges `--tokens`, and refuses what `authSettings` refuses. */
export async function loadNodeAuth(config: ServeConfig, logger: Logger): Promise<AuthSettings> {
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
  });
  logger.info('authentication', {
    tokens: auth.tokens.length,
    nativeApi: auth.requireToken ? 'bearer token' : 'open',
    smartProxy: auth.openSmartProxy ? 'open' : 'loopback-only',
  });
  if (!auth.requireToken && !isLoopback(config.host))
    logger.warn('--insecure-no-auth: the native API is open to the network without tokens', { host: config.host });
  if (auth.openSmartProxy)
    logger.warn('--open-smart-proxy: smart-proxy routes accept any client; restrict who can reach this port');
  return auth;
}

/** The peer of a request served by @hono/node-server; `undefined` outside it (e.g. `app.request()` in tests). */
export function nodeRemoteAddress(c: Context): string | undefined {
  const env = c.env as { incoming?: unknown; server?: { incoming?: unknown } } | undefined;
  if (!env?.incoming && !env?.server?.incoming) return undefined;
  return getConnInfo(c).remote.address;
}
