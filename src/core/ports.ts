/**
 * Capabilities the core needs but cannot get portably from Web APIs; each runtime adapter injects them
 * (hono's serve-static pattern). The core never imports undici, node:* or a cloud SDK.
 */

export interface UpstreamRequest {
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

export interface UpstreamResponse {
  readonly status: number;
  /** Lower-case header names. */
  header(name: string): string | undefined;
  /** The body, consumed at most once. Must propagate backpressure: the next chunk is read only when asked for. */
  readonly body: AsyncIterable<Uint8Array>;
  /** Discard the body without reading it (redirects, errors, 304). */
  discard(): Promise<void>;
}

/**
 * One HTTP exchange, no redirect following (the core follows redirects itself so every hop passes the URL policy).
 * Throws `UpstreamError` with codes `timeout`, `connect`, `reset`, `tls` for transport failures.
 */
export interface UpstreamClient {
  request(req: UpstreamRequest): Promise<UpstreamResponse>;
}

/**
 * A streaming sha256 (crypto.subtle.digest cannot stream). `digest` is asynchronous because Workers' streaming hash
 * (crypto.DigestStream) only settles once its stream closes; node:crypto answers at once.
 */
export interface Hasher {
  update(chunk: Uint8Array): void;
  /** Lowercase hex. Called once, after the last update. */
  digest(): Promise<string>;
}
export type HasherFactory = () => Hasher;

export interface Clock {
  now(): number;
}

export type LogFields = Record<string, unknown>;
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export const systemClock: Clock = { now: () => Date.now() };

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Told of one transfer's bytes as they arrive (the CLI draws progress from it): `bytes` so far of `total` (null: no
 * length announced); `ended` once, when the transfer finished or stopped, whatever the outcome.
 */
export type TransferProgress = (name: string, bytes: number, total: number | null, ended?: boolean) => void;
