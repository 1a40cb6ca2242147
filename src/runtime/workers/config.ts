import type { z } from 'zod';
import { hostedAuth, type AuthSettings } from '../../core/auth.js';
import { envName, optionsFromVariables, serveSchema, withVariableNames } from '../../core/config.js';
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
  const parsed = workersSchema.safeParse(optionsFromVariables(Object.keys(workersSchema.shape), env));
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
  return withVariableNames(() =>
    hostedAuth(config, 'store the printed entry with "npx wrangler secret put PXECACHE_TOKENS"'),
  );
}
