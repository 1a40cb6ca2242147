import { Transform } from 'node:stream';
import { Client, FTPError } from 'basic-ftp';
import { PxeError, UpstreamError, describe } from '../../core/errors.js';
import { DEFAULT_HOST_RULES, type HostRules } from '../../core/host-rules.js';
import type { UpstreamClient, UpstreamRequest, UpstreamResponse } from '../../core/ports.js';
import { guardSockets } from './ftp-guard.js';
import { resolveChecked, systemResolver, type Resolver } from './guarded-lookup.js';

export interface FtpUpstreamOptions {
  /** Longest time from the TCP connect to a logged-in session. */
  readonly connectTimeoutMs: number;
  /** Longest wait for a control reply, and longest stall of the data connection while we are ready to read. */
  readonly idleTimeoutMs: number;
  /**
   * Accepted for symmetry with the HTTP client; plain ftp:// has no TLS (smart-proxy's curl does not upgrade ftp://
   * either) and FTPS is not offered.
   */
  readonly verifyTls: boolean;
  /** Checked on the resolved control address and on every data address. Default: the default deny rules. */
  readonly rules?: HostRules;
  /** Tests only: replaces DNS. */
  readonly resolve?: Resolver;
}

/** RFC 1635 anonymous login; the password is conventionally an e-mail-like identification. */
const ANONYMOUS = { user: 'anonymous', password: 'pxecache@' };
/** Buffered between the data socket and the consumer; beyond it the socket is paused (backpressure). */
const BUFFER = 1 << 20;
/** Transfer aborted, data connection failed, service closing: the transfer did not complete. */
const TRANSFER_FAILED = new Set([421, 425, 426, 451]);

/**
 * ftp:// media on Node (smart-proxy downloads them with curl), shaped as one HTTP exchange for the core:
 * - revalidation with SIZE and MDTM: together they make an exact-match validator (`ETag "ftp-<size>-<mdtm ms>"`);
 *   a matching `If-None-Match` answers 304 without a transfer. `If-Modified-Since` alone is ignored on purpose: an
 *   mtime-only, newer-than check is the smart-proxy behaviour that misses a same-second respin or a restored older
 *   file. Without SIZE or MDTM there are no validators and every call downloads (the core then compares sha256).
 * - the file is always read with RETR from offset 0, never REST: a changed upstream must never be spliced onto
 *   old bytes (DESIGN.md principle 2); resuming is only for immutable, hash-known blobs, never for upstream.
 * - missing file (550) is status 404; SIZE is announced as `content-length` so the core counts the bytes.
 * - when SIZE and MDTM were known, they are asked again after the transfer: a file rewritten in place during the
 *   transfer yields a mix of old and new bytes, which fails with `upstream-changed` instead of being published.
 * - the host is resolved here and its addresses checked against the host rules before connecting to the checked
 *   address (DNS rebinding); the data connections pass the same rules (`guardSockets`).
 */
export function createFtpUpstream(opts: FtpUpstreamOptions): UpstreamClient & { close(): Promise<void> } {
  const open = new Set<Client>();
  const rules = opts.rules ?? DEFAULT_HOST_RULES;
  const resolve = opts.resolve ?? systemResolver;

  async function request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const where = redacted(req.url);
    const target = parseFtpUrl(req.url, where);
    // allowSeparateTransferHost false (basic-ftp's default, kept explicitly): data connections go to the control
    // connection's address whatever PASV answers, so a server cannot point them elsewhere.
    const client = new Client(opts.idleTimeoutMs, { allowSeparateTransferHost: false });
    guardSockets(client, rules, target.host);
    open.add(client);
    const onAbort = () => client.close();
    req.signal?.addEventListener('abort', onAbort, { once: true });
    const release = () => {
      req.signal?.removeEventListener('abort', onAbort);
      open.delete(client);
      client.close();
    };
    const fail = (err: unknown) => mapError(where, err, req.signal);
    let handedOver = false;
    try {
      if (req.signal?.aborted) throw req.signal.reason;
      await login(client, target, opts.connectTimeoutMs, (host) => resolveChecked(rules, host, resolve));
      const before = await probe(client, target.path);
      if (before.etag !== null && ifNoneMatch(req.headers, before.etag)) return emptyResponse(304, before);

      // Wait for the first byte or the end of the transfer before answering, so a refused RETR (550) is a status.
      let started!: () => void;
      const firstChunk = new Promise<'data'>((resolve) => (started = () => resolve('data')));
      const pipe = new Transform({
        readableHighWaterMark: BUFFER,
        writableHighWaterMark: BUFFER,
        transform(chunk: Buffer, _encoding, callback) {
          started();
          callback(null, chunk);
        },
      });
      // startAt 0: plain RETR; basic-ftp would send REST for any other offset.
      const transfer = client.downloadTo(pipe, target.path, 0);
      const outcome: Promise<unknown> = transfer.then(
        () => null,
        (err: unknown) => err ?? new Error('transfer failed'),
      );
      const first = await Promise.race([firstChunk, outcome]);
      if (first !== 'data' && first !== null) {
        if (first instanceof FTPError && first.code === 550) return emptyResponse(404, NO_PROBE);
        throw first;
      }
      handedOver = true;
      const headers = headersOf(before);
      if (before.size !== null) headers.set('content-length', String(before.size));
      return {
        status: 200,
        header: (name) => headers.get(name.toLowerCase()),
        body: bodyOf(pipe, outcome, {
          release,
          fail,
          // Only a complete transfer is checked: a short one is the core's `truncated` (it knows content-length).
          async verify(received) {
            if (before.etag === null || received !== before.size) return;
            const after = await probe(client, target.path);
            if (after.etag !== null && after.etag !== before.etag)
              throw new UpstreamError(
                'upstream-changed',
                where,
                `file changed during the transfer (SIZE/MDTM ${before.etag} -> ${after.etag}); not published, the next fetch starts over`,
              );
          },
        }),
        async discard() {
          pipe.destroy();
          release();
          await outcome;
        },
      };
    } catch (err) {
      throw fail(err);
    } finally {
      if (!handedOver) release();
    }
  }

  return {
    request,
    async close() {
      for (const client of open) client.close();
      open.clear();
    },
  };
}

interface FtpTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** RFC 1738: relative to the login directory (curl's reading); a leading %2F makes it absolute. */
  readonly path: string;
}

function parseFtpUrl(url: URL, where: string): FtpTarget {
  try {
    const path = url.pathname.slice(1).split('/').map(decodeURIComponent).join('/');
    // basic-ftp refuses these too, but only after connecting; a URL cannot smuggle a second command.
    if (/[\r\n\0]/.test(path)) throw new Error('control characters in the path');
    const user = url.username === '' ? null : decodeURIComponent(url.username);
    return {
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? 21 : Number(url.port),
      user: user ?? ANONYMOUS.user,
      password: user === null ? ANONYMOUS.password : decodeURIComponent(url.password),
      path,
    };
  } catch (err) {
    throw new UpstreamError('upstream', where, `unusable ftp:// URL: ${describe(err)}`, { cause: err });
  }
}

async function login(
  client: Client,
  target: FtpTarget,
  timeoutMs: number,
  resolve: (host: string) => Promise<readonly { address: string }[]>,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      client.close();
      reject(new Error(`Timeout: no FTP session within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    // Connect to the address that was checked, not to the name (which could resolve elsewhere a second time).
    const [first] = await Promise.race([resolve(target.host), deadline]);
    const host = first?.address ?? target.host;
    // access(): connect, USER/PASS, FEAT, TYPE I (binary). Transfers use passive mode (EPSV, then PASV).
    const session = client.access({ host, port: target.port, user: target.user, password: target.password });
    await Promise.race([session, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

interface Probe {
  readonly size: number | null;
  /** Both null unless SIZE and MDTM both answered: an mtime alone is no validator (see above). */
  readonly etag: string | null;
  readonly lastModified: string | null;
}

const NO_PROBE: Probe = { size: null, etag: null, lastModified: null };

/** SIZE and MDTM; a part is null when the server refuses it (an FTP error reply; transport errors still throw). */
async function probe(client: Client, path: string): Promise<Probe> {
  const size = await replyOrNull(() => client.size(path));
  const mdtm = await replyOrNull(() => client.lastMod(path));
  const modified = mdtm === null || Number.isNaN(mdtm.getTime()) ? null : mdtm;
  if (size === null || modified === null) return { ...NO_PROBE, size };
  return { size, etag: `"ftp-${size}-${modified.getTime()}"`, lastModified: modified.toUTCString() };
}

async function replyOrNull<T>(op: () => Promise<T>): Promise<T | null> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof FTPError && !TRANSFER_FAILED.has(err.code)) return null;
    throw err;
  }
}

function ifNoneMatch(headers: Readonly<Record<string, string>>, etag: string): boolean {
  const entry = Object.entries(headers).find(([name]) => name.toLowerCase() === 'if-none-match');
  return entry !== undefined && entry[1].split(',').some((tag) => tag.trim() === etag);
}

function headersOf(probed: Probe): Map<string, string> {
  const headers = new Map<string, string>();
  if (probed.etag !== null) headers.set('etag', probed.etag);
  if (probed.lastModified !== null) headers.set('last-modified', probed.lastModified);
  return headers;
}

function emptyResponse(status: number, probed: Probe): UpstreamResponse {
  const headers = headersOf(probed);
  return {
    status,
    header: (name) => headers.get(name.toLowerCase()),
    body: (async function* () {})(),
    async discard() {},
  };
}

/**
 * The data connection as a single-use async iterable. The control connection is closed when the body is fully read,
 * fails, is abandoned (return()) or discarded; the iterator is hand-written so that a return() before the first
 * next() closes it too (a generator would skip its finally then).
 */
function bodyOf(
  pipe: Transform,
  outcome: Promise<unknown>,
  hooks: { release(): void; fail(err: unknown): UpstreamError; verify(received: number): Promise<void> },
): AsyncIterable<Uint8Array> {
  let used = false;
  return {
    [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
      if (used) throw new Error('ftp body consumed twice');
      used = true;
      const chunks = pipe[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      let received = 0;
      let finished = false;
      return {
        async next(): Promise<IteratorResult<Uint8Array>> {
          if (finished) return { done: true, value: undefined };
          try {
            const r = await chunks.next();
            if (!r.done) {
              received += r.value.byteLength;
              return { done: false, value: r.value };
            }
            const err = await outcome;
            if (err !== null) throw err;
            await hooks.verify(received);
            finished = true;
            hooks.release();
            return { done: true, value: undefined };
          } catch (err) {
            finished = true;
            hooks.release();
            // The transfer's own error says more (a watchdog timeout, a 426) than the stream's premature close.
            const transferErr = await outcome;
            throw hooks.fail(transferErr !== null && !isUserClose(transferErr) ? transferErr : err);
          }
        },
        async return(): Promise<IteratorResult<Uint8Array>> {
          finished = true;
          pipe.destroy();
          hooks.release();
          return { done: true, value: undefined };
        },
      };
    },
  };
}

function isUserClose(err: unknown): boolean {
  return err instanceof Error && /^User closed client/.test(err.message);
}

function redacted(url: URL): string {
  if (url.password === '') return url.href;
  const copy = new URL(url.href);
  copy.password = '***';
  return copy.href;
}

function mapError(where: string, err: unknown, signal: AbortSignal | undefined): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const message = describe(err);
  if (err instanceof PxeError && err.code === 'policy')
    return new UpstreamError('policy', where, message, { cause: err });
  if (signal?.aborted) return new UpstreamError('aborted', where, message, { cause: err });
  if (err instanceof FTPError) {
    if (TRANSFER_FAILED.has(err.code)) return new UpstreamError('reset', where, `FTP ${message}`, { cause: err });
    return new UpstreamError('upstream-status', where, `FTP ${message}`, { cause: err });
  }
  const code = (err as { code?: unknown }).code;
  const all = `${typeof code === 'string' ? code : ''} ${message}`;
  if (/\bTimeout\b/i.test(all)) return new UpstreamError('timeout', where, message, { cause: err });
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH/.test(all))
    return new UpstreamError('connect', where, message, { cause: err });
  if (/ECONNRESET|EPIPE|ERR_STREAM_PREMATURE_CLOSE|unexpectedly|FIN packet|transmission error/.test(all))
    return new UpstreamError('reset', where, message, { cause: err });
  return new UpstreamError('upstream', where, message, { cause: err });
}
