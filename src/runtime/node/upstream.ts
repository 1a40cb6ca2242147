import { createGcPacer } from './gc-pacer.js';
import { errors, request } from 'undici';
import { PxeError, UpstreamError, describe } from '../../core/errors.js';
import { DEFAULT_HOST_RULES, type HostRules } from '../../core/host-rules.js';
import type { UpstreamClient, UpstreamRequest, UpstreamResponse } from '../../core/ports.js';
import type { Resolver } from './guarded-lookup.js';
import { createDispatchers, type ProxySettings } from './upstream-dispatcher.js';

export interface UndiciUpstreamOptions {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  /** Longest pause between two body chunks before the download counts as stalled. */
  readonly bodyIdleTimeoutMs: number;
  /** smart-proxy's `verify_server_cert`; on by default. */
  readonly verifyTls: boolean;
  /** Checked on every address a host name resolves to, before the socket connects. Default: the default deny rules. */
  readonly rules?: HostRules;
  /** `--upstream-ca-file`: PEM of CAs trusted besides the default ones. */
  readonly extraCaPem?: string;
  /** `http_proxy`, `https_proxy`, `no_proxy` (see `proxyFromEnv`); none: every connection is direct. */
  readonly proxy?: ProxySettings;
  /** Tests only: replaces DNS (a name that resolves to a refused address, which no test can make DNS do). */
  readonly resolve?: Resolver;
}

/**
 * The upstream client on Node: undici's `request` (the fast path, with backpressure: the body is a Readable that
 * is only read as fast as the store writes). Redirects are not followed here: the core follows them through its
 * URL policy. Resolved addresses pass the host rules at connect time (upstream-dispatcher.ts).
 */
export function createUndiciUpstream(opts: UndiciUpstreamOptions): UpstreamClient & { close(): Promise<void> } {
  const dispatchers = createDispatchers({
    connectTimeoutMs: opts.connectTimeoutMs,
    headersTimeoutMs: opts.headersTimeoutMs,
    bodyIdleTimeoutMs: opts.bodyIdleTimeoutMs,
    verifyTls: opts.verifyTls,
    rules: opts.rules ?? DEFAULT_HOST_RULES,
    ...(opts.extraCaPem ? { extraCaPem: opts.extraCaPem } : {}),
    ...(opts.proxy ? { proxy: opts.proxy } : {}),
    ...(opts.resolve ? { resolve: opts.resolve } : {}),
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
          dispatcher: target.protocol === 'https:' ? dispatchers.https : dispatchers.http,
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
          const pace = createGcPacer();
          try {
            for await (const chunk of body) {
              yield chunk as Uint8Array;
              pace((chunk as Uint8Array).byteLength);
            }
          } catch (err) {
            throw mapError(url, err);
          }
        })(),
        async discard() {
          await body.dump().catch(() => undefined);
        },
      };
    },
    close: () => dispatchers.close(),
  };
}

function mapError(url: string, err: unknown): UpstreamError {
  if (err instanceof UpstreamError) return err;
  if (err instanceof PxeError && err.code === 'policy')
    return new UpstreamError('policy', url, err.message, { cause: err });
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
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME_MISMATCH/i.test(code))
    return new UpstreamError('tls', url, message, { cause: err });
  // A proxy that refused the CONNECT: undici reports it as an aborted request.
  if (/Proxy response \(\d+\)/.test(message)) return new UpstreamError('connect', url, message, { cause: err });
  if (err instanceof errors.RequestAbortedError) return new UpstreamError('aborted', url, message, { cause: err });
  if (err instanceof errors.SocketError || code === 'ECONNRESET' || code === 'EPIPE')
    return new UpstreamError('reset', url, message, { cause: err });
  return new UpstreamError('upstream', url, message, { cause: err });
}
