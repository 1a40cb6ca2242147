import { UpstreamError } from './errors.js';
import type { UpstreamClient, UpstreamResponse } from './ports.js';
import type { ResumePoint } from './resumable.js';
import { parseUpstreamUrl, type UrlPolicy } from './url-policy.js';

export interface Conditional {
  readonly etag: string | null;
  readonly lastModified: string | null;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * GET with bounded redirect following. The core follows redirects itself (instead of the client) so that every hop
 * passes the same URL policy as the caller's URL; validators are sent on every hop because they describe the
 * resource, not the hop.
 */
export async function upstreamGet(
  client: UpstreamClient,
  url: URL,
  conditional: Conditional | null,
  opts: { maxRedirects: number; policy: UrlPolicy; userAgent: string; signal?: AbortSignal; range?: ResumePoint },
): Promise<{ response: UpstreamResponse; finalUrl: URL }> {
  let current = url;
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { 'accept-encoding': 'identity', 'user-agent': opts.userAgent };
    if (conditional?.etag) headers['if-none-match'] = conditional.etag;
    if (conditional?.lastModified) headers['if-modified-since'] = conditional.lastModified;
    // RFC 9110 13.1.5: the rest of the representation whose strong ETag this is (206), else all of the current one.
    if (opts.range) {
      headers['range'] = `bytes=${opts.range.offset}-`;
      headers['if-range'] = opts.range.etag;
    }
    const response = await client.request({
      url: current,
      headers,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (!REDIRECTS.has(response.status)) return { response, finalUrl: current };
    await response.discard();
    const location = response.header('location');
    if (!location)
      throw new UpstreamError('upstream-status', current.href, `${response.status} redirect without Location`, {
        status: response.status,
      });
    if (hop >= opts.maxRedirects)
      throw new UpstreamError('too-many-redirects', url.href, `more than ${opts.maxRedirects} redirects`, {
        status: response.status,
      });
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      throw new UpstreamError('upstream-status', current.href, `redirect to an invalid URL "${location.slice(0, 80)}"`);
    }
    let kind: string;
    try {
      kind = parseUpstreamUrl(next.href, 'redirect', opts.policy).kind;
    } catch (err) {
      throw new UpstreamError('redirect-refused', current.href, `redirect refused: ${(err as Error).message}`);
    }
    if (kind !== 'http')
      throw new UpstreamError('redirect-refused', current.href, `redirect to unsupported scheme ${next.protocol}`);
    current = next;
  }
}
