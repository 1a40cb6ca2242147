import { Agent, errors, request } from 'undici';
import { UpstreamError, describe } from '../../core/errors.js';
import type { UpstreamClient, UpstreamRequest, UpstreamResponse } from '../../core/ports.js';

export interface UndiciUpstreamOptions {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  /** Longest pause between two body chunks before the download counts as stalled. */
  readonly bodyIdleTimeoutMs: number;
  /** smart-proxy's `verify_server_cert`; on by default. */
  readonly verifyTls: boolean;
}

/**
 * The upstream client on Node: undici's `request` (the fast path, with backpressure: the body is a Readable that
 * is only read as fast as the store writes). Redirects are not followed here: the core follows them through its
 * URL policy.
 */
export function createUndiciUpstream(opts: UndiciUpstreamOptions): UpstreamClient & { close(): Promise<void> } {
  const dispatcher = new Agent({
    connect: { timeout: opts.connectTimeoutMs, rejectUnauthorized: opts.verifyTls },
    headersTimeout: opts.headersTimeoutMs,
    bodyTimeout: opts.bodyIdleTimeoutMs,
    keepAliveTimeout: 4_000,
  });
  return {
    async request(req: UpstreamRequest): Promise<UpstreamResponse> {
      // curl sends credentials written in the URL as Basic auth; undici drops them silently. They go to this hop
      // only: a redirect target carries its own (the core never copies them across hops).
      const target = new URL(req.url.href);
      const headers: Record<string, string> = { ...req.headers };
      if (target.username || target.password) {
        const user = decodeURIComponent(target.username);
        const pass = decodeURIComponent(target.password);
        headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
        target.username = '';
        target.password = '';
      }
      const url = target.href;
      let res;
      try {
        res = await request(url, {
          method: 'GET',
          headers,
          dispatcher,
          ...(req.signal ? { signal: req.signal } : {}),
          highWaterMark: 1024 * 1024,
        });
      } catch (err) {
        throw mapError(url, err);
      }
      const body = res.body;
      return {
        status: res.statusCode,
        header(name) {
          const v = res.headers[name.toLowerCase()];
          return Array.isArray(v) ? v.join(', ') : v;
        },
        body: (async function* () {
          try {
            for await (const chunk of body) yield chunk as Uint8Array;
          } catch (err) {
            throw mapError(url, err);
          }
        })(),
        async discard() {
          await body.dump().catch(() => undefined);
        },
      };
    },
    close: () => dispatcher.close(),
  };
}

function mapError(url: string, err: unknown): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const code = (err as { code?: string }).code ?? '';
  const message = describe(err);
  if (
    err instanceof errors.ConnectTimeoutError ||
    err instanceof errors.HeadersTimeoutError ||
    err instanceof errors.BodyTimeoutError
  )
    return new UpstreamError('timeout', url, message, { cause: err });
  if (err instanceof errors.ResponseContentLengthMismatchError)
    return new UpstreamError('truncated', url, message, { cause: err });
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH')
    return new UpstreamError('connect', url, message, { cause: err });
  if (/CERT|SSL|TLS|SELF_SIGNED/i.test(code)) return new UpstreamError('tls', url, message, { cause: err });
  if (err instanceof errors.RequestAbortedError) return new UpstreamError('aborted', url, message, { cause: err });
  if (err instanceof errors.SocketError || code === 'ECONNRESET' || code === 'EPIPE')
    return new UpstreamError('reset', url, message, { cause: err });
  return new UpstreamError('upstream', url, message, { cause: err });
}
