import { InputError } from './errors.js';
import { DEFAULT_DENY, hostRefusal, type HostRules } from './host-rules.js';
import { hideCredentials } from './redact.js';

export type UpstreamKind = 'http' | 'ftp' | 'nfs';

/** What may be fetched: schemes, and the host rules (`deny`, `allow`; see host-rules.ts, `withHostLists`). */
export interface UrlPolicy extends HostRules {
  /** Schemes this runtime can download (ftp needs raw sockets: Node only, added with the FTP client). */
  readonly fetchSchemes: readonly string[];
}

export const defaultUrlPolicy: UrlPolicy = { fetchSchemes: ['http:', 'https:'], deny: DEFAULT_DENY, allow: null };

/** Node has raw sockets: ftp:// media too (smart-proxy downloads them with curl). Workers and Lambda keep the default. */
export const nodeUrlPolicy: UrlPolicy = { ...defaultUrlPolicy, fetchSchemes: ['http:', 'https:', 'ftp:'] };

/**
 * Checks an upstream URL given by a caller. smart-proxy accepts http(s) and ftp and treats nfs as a no-op (the medium
 * is mounted, not downloaded); everything else is refused with a message that names the field. The host of a URL to
 * download must pass the host rules (a literal address is checked here, a name here and again once resolved).
 */
export function parseUpstreamUrl(raw: string, field: string, policy: UrlPolicy = defaultUrlPolicy) {
  if (raw.trim() === '') throw new InputError(field, 'is empty');
  if (raw.length > 8192) throw new InputError(field, 'is longer than 8192 characters');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InputError(field, `"${hideCredentials(raw).slice(0, 80)}" is not a valid absolute URL`);
  }
  const scheme = url.protocol;
  if (scheme === 'nfs:') return { url, kind: 'nfs' as UpstreamKind };
  if (policy.fetchSchemes.includes(scheme)) {
    if (url.hostname === '') throw new InputError(field, `"${hideCredentials(raw).slice(0, 80)}" has no host`);
    const refusal = hostRefusal(policy, url.hostname);
    if (refusal) throw new InputError(field, refusal);
    return { url, kind: (scheme === 'ftp:' ? 'ftp' : 'http') as UpstreamKind };
  }
  if (scheme === 'ftp:')
    throw new InputError(field, 'ftp:// media are not supported yet on this runtime; use http:// or https://');
  throw new InputError(field, `scheme "${scheme.slice(0, -1)}" is not supported; use http:// or https://`);
}
