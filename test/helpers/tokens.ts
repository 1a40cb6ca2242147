/** Bearer tokens for route tests: one per scope, and the `--tokens` list a server checks them against. */
import { authSettings, hashToken, readTokens, tokenListEntry, type AuthSettings } from '../../src/core/auth.js';
import { nodeSha256 } from '../../src/runtime/node/hasher.js';

export interface ScopedTokens {
  readonly tokens: { readonly read: string; readonly fetch: string; readonly admin: string };
  /** `--tokens` value: ids `agent` (read), `ci` (fetch), `ops` (admin). */
  readonly list: string;
  /** As `serve --host 0.0.0.0 --tokens <list>` derives it: tokens required on every native route. */
  readonly auth: (opts?: { failureLimit?: number }) => AuthSettings;
}

export async function scopedTokens(tag: string): Promise<ScopedTokens> {
  const tokens = { read: `pxc_read-token-${tag}`, fetch: `pxc_fetch-token-${tag}`, admin: `pxc_admin-token-${tag}` };
  const list = [
    tokenListEntry({ id: 'agent', sha256: await hashToken(tokens.read, nodeSha256), scopes: ['read'] }),
    tokenListEntry({ id: 'ci', sha256: await hashToken(tokens.fetch, nodeSha256), scopes: ['fetch'] }),
    tokenListEntry({ id: 'ops', sha256: await hashToken(tokens.admin, nodeSha256), scopes: ['admin'] }),
  ].join(',');
  const auth = (opts: { failureLimit?: number } = {}) =>
    authSettings({ host: '0.0.0.0', tokens: readTokens({ list }), insecureNoAuth: false, openSmartProxy: false, ...opts }); // prettier-ignore
  return { tokens, list, auth };
}
