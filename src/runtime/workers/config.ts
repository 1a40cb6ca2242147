import type { z } from 'zod';
import { authSettings, parseTrustedHosts, readTokens, type AuthSettings } from '../../core/auth.js';
import { envName, serveSchema } from '../../core/config.js';
import { ConfigError } from '../../core/errors.js';

/**
 * The Worker's settings: the `serve` options that mean something on Workers, read from `PXECACHE_*` variables
 * (wrangler.toml `[vars]`) and secrets (`PXECACHE_TOKENS`). What Workers decide themselves is left out: TLS (the
 * platform terminates it; Foreman's client certificate is checked by a Cloudflare mTLS rule), ports, the store
 * (the R2 binding), and ftp:// (no raw sockets).
 */
export const workersSchema = serveSchema.pick({
  'server-name': true,
  sites: true,
  tokens: true,
  'open-smart-proxy': true,
  'trusted-hosts': true,
  'auth-failure-limit': true,
  'headers-timeout': true,
  'idle-timeout': true,
  'fetch-timeout': true,
  'max-redirects': true,
  'upstream-allow': true,
  'upstream-deny': true,
  'keep-versions': true,
  'lease-ttl': true,
  'log-level': true,
});
export type WorkersConfig = Readonly<z.output<typeof workersSchema>>;

/** Every problem at once, each naming its variable (`PXECACHE_KEEP_VERSIONS: ...`). */
export function parseWorkersConfig(env: Readonly<Record<string, unknown>>): WorkersConfig {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(workersSchema.shape)) {
    const value = env[envName(key)];
    if (typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number') raw[key] = value;
  }
  const parsed = workersSchema.safeParse(raw);
  if (!parsed.success)
    throw new ConfigError(parsed.error.issues.map((i) => `${envName(String(i.path[0] ?? ''))}: ${i.message}`));
  return Object.freeze(parsed.data);
}

/**
 * A Worker answers on the Internet: the native API always needs a bearer token (`PXECACHE_TOKENS`, a secret).
 * Smart-proxy routes take a client certificate whose CN is in `PXECACHE_TRUSTED_HOSTS` (Cloudflare mTLS), or any
 * caller with `PXECACHE_OPEN_SMART_PROXY` (behind Cloudflare Access or a firewall rule, say).
 */
export function workersAuth(config: WorkersConfig): AuthSettings {
  try {
    return buildAuth(config);
  } catch (err) {
    // The shared parsers speak in `serve` flags; on Workers the operator set variables.
    if (err instanceof ConfigError)
      throw new ConfigError(err.issues.map((i) => i.replace(/--([a-z][a-z-]*)/g, (_, flag: string) => envName(flag))));
    throw err;
  }
}

function buildAuth(config: WorkersConfig): AuthSettings {
  const tokens = readTokens(config.tokens !== undefined ? { list: config.tokens } : {});
  if (tokens.length === 0)
    throw new ConfigError([
      'PXECACHE_TOKENS: a Worker answers on the Internet, so the native API needs bearer tokens: make one with ' +
        '"pxecache token --id <name> --scopes admin" and store the printed entry with ' +
        '"npx wrangler secret put PXECACHE_TOKENS"',
    ]);
  // Not a loopback host: `authSettings` requires a token on every native route.
  return authSettings({
    host: '0.0.0.0',
    tokens,
    insecureNoAuth: false,
    openSmartProxy: config['open-smart-proxy'],
    trustedHosts: parseTrustedHosts(config['trusted-hosts'] ?? ''),
    failureLimit: config['auth-failure-limit'],
  });
}
