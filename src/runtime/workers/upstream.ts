import { UpstreamError, describe } from '../../core/errors.js';
import type { UpstreamClient, UpstreamRequest, UpstreamResponse } from '../../core/ports.js';
import { concatBytes } from '../../storage/object-store.js';

export interface FetchUpstreamOptions {
  /** Until the response headers arrive (Workers' fetch has no separate connect phase to time). */
  readonly headersTimeoutMs: number;
  /** Longest pause between two body chunks. */
  readonly bodyIdleTimeoutMs: number;
}

/**
 * The upstream client on Workers: the platform's `fetch`, one hop at a time (`redirect: 'manual'`: the core follows
 * redirects itself so every hop passes the URL policy), with the same timeouts and error codes as Node's undici
 * client. TLS is always verified there: the platform offers no way to turn it off.
 */
export function createFetchUpstream(opts: FetchUpstreamOptions): UpstreamClient {
  return {
    async request(req: UpstreamRequest): Promise<UpstreamResponse> {
      const target = new URL(req.url.href);
      const headers = new Headers(req.headers);
      // As curl (and the Node client) do: credentials written in the URL go as Basic auth, to this hop only.
      if (target.username || target.password) {
        headers.set(
          'authorization',
          `Basic ${btoa(`${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`)}`,
        );
        target.username = '';
        target.password = '';
      }
      const url = target.href;
      const abort = new AbortController();
      const cancel = () => abort.abort(req.signal?.reason);
      req.signal?.addEventListener('abort', cancel, { once: true });
      const headersTimer = setTimeout(
        () => abort.abort(timeout(url, `no response headers within ${opts.headersTimeoutMs / 1000} s`)),
        opts.headersTimeoutMs,
      );
      let res: Response;
      try {
        res = await fetch(url, { method: 'GET', headers, redirect: 'manual', signal: abort.signal });
      } catch (err) {
        req.signal?.removeEventListener('abort', cancel);
        throw mapError(url, abort.signal.reason ?? err, 'connect');
      } finally {
        clearTimeout(headersTimer);
      }
      const body = res.body;
      return {
        status: res.status,
        header: (name) => res.headers.get(name) ?? undefined,
        body: readIdle(url, body, opts.bodyIdleTimeoutMs, abort, () =>
          req.signal?.removeEventListener('abort', cancel),
        ),
        async discard() {
          req.signal?.removeEventListener('abort', cancel);
          await body?.cancel().catch(() => undefined);
        },
      };
    },
  };
}

/** Chunks smaller than this are joined: every chunk costs a trip through the count, the hash and the store. */
const BATCH_BYTES = 256 * 1024;

/**
 * The body, in chunks of at least 256 KiB (workerd hands out a few KiB at a time, and each chunk's way through the
 * count, the hash and the part buffer cost more than its copy here), with an idle watchdog: no data for `idleMs`
 * aborts the request (`timeout`); a lost connection is `reset`. One interval per body, not a timer per chunk.
 */
async function* readIdle(
  url: string,
  body: ReadableStream<Uint8Array> | null,
  idleMs: number,
  abort: AbortController,
  done: () => void,
): AsyncIterable<Uint8Array> {
  if (!body) return done();
  const reader = body.getReader();
  let last = Date.now();
  const watchdog = setInterval(
    () => {
      if (Date.now() - last > idleMs) abort.abort(timeout(url, `no body data for ${idleMs / 1000} s`));
    },
    Math.min(idleMs, 1000),
  );
  let parts: Uint8Array[] = [];
  let bytes = 0;
  try {
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (err) {
        throw mapError(url, abort.signal.reason ?? err, 'reset');
      }
      last = Date.now();
      if (next.done) break;
      parts.push(next.value);
      bytes += next.value.byteLength;
      if (bytes < BATCH_BYTES) continue;
      yield concatBytes(parts, bytes);
      parts = [];
      bytes = 0;
    }
    if (bytes > 0) yield concatBytes(parts, bytes);
  } finally {
    clearInterval(watchdog);
    done();
    // Ended early (an error, the consumer stopped): release the connection.
    await reader.cancel().catch(() => undefined);
  }
}

function timeout(url: string, message: string): UpstreamError {
  return new UpstreamError('timeout', url, message);
}

function mapError(url: string, err: unknown, fallback: 'connect' | 'reset'): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const message = describe(err);
  if (/certificate|SSL|TLS/i.test(message)) return new UpstreamError('tls', url, message, { cause: err });
  if ((err as { name?: string }).name === 'AbortError')
    return new UpstreamError('aborted', url, message, { cause: err });
  return new UpstreamError(fallback, url, message, { cause: err });
}
