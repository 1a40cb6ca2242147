/**
 * A real upstream mirror for integration tests: `http.createServer().listen(0)` on 127.0.0.1 whose files, validators
 * and faults the test controls, and which records every request and every body byte it sent.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface UpstreamFileOptions {
  /** Strong ETag to send; default: the quoted sha256 prefix of the bytes; `false`: none. */
  readonly etag?: string | false;
  /** Last-Modified to send; default: a date later than every earlier `set`; `false`: none. */
  readonly lastModified?: string | false;
  /** Delay before the response headers. */
  readonly delayMs?: number;
  /** Trickle the body: `chunkSize` bytes, then this pause, and so on. */
  readonly chunkDelayMs?: number;
  /** Chunk size for `chunkDelayMs` and `bodyGate` (default 1024). */
  readonly chunkSize?: number;
  /** Announce the full Content-Length, send only this many bytes, then destroy the socket. */
  readonly truncateAt?: number;
  /** Announce the full Content-Length, send only this many bytes, then close the connection cleanly (FIN, not RST). */
  readonly endAt?: number;
  /** Answer with this status (and a short text body) instead of the file; validators are ignored. */
  readonly status?: number;
  /** With `status`: this body (an HTML error page, say) under `contentType` instead of the short text. */
  readonly errorBody?: { readonly body: string; readonly contentType: string };
  /** Answer 302 to this path (on this server) instead of the file: a loop when the paths lead back here. */
  readonly redirectTo?: string;
  /** No Content-Length: the body goes chunked (Transfer-Encoding: chunked), as from a generating server. */
  readonly chunked?: boolean;
  /** Reset the connection as soon as the request arrives: no status line at all. */
  readonly reset?: boolean;
  /** Headers are held until this settles (a deterministic `delayMs`). */
  readonly gate?: Promise<void>;
  /** The first chunk is sent, then the rest is held until this settles. */
  readonly bodyGate?: Promise<void>;
  /**
   * Options for the next requests that would send the file's bytes (GETs not answered 304), one each, in order:
   * `[{ truncateAt: n }]` cuts the first download only. The file's own options apply once these are used up.
   */
  readonly faults?: readonly UpstreamFileOptions[];
  /** Runs when a `truncateAt` body is cut, before the socket dies (a respin between two attempts, say). */
  readonly onCut?: () => void;
  /** Ignore `Range` (answer 200 with the whole file), as servers without range support do. */
  readonly noRanges?: boolean;
}

export interface UpstreamRequestRecord {
  readonly path: string;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  /** Status sent (206 for a range), 0 until the headers go out. */
  status: number;
  /** Body bytes written to the socket so far. */
  bodyBytes: number;
}

export interface Upstream {
  readonly origin: string;
  url(path: string): string;
  set(path: string, bytes: Uint8Array | string, opts?: UpstreamFileOptions): void;
  readonly requests: UpstreamRequestRecord[];
  count(path: string): number;
  /**
   * Requests answered 200 with the file: downloads. Every download is followed by a conditional check of its
   * validators (core/fetch-job.ts), so `count` is about twice this.
   */
  downloads(path: string): number;
  /** Requests answered 304 Not Modified: revalidations, and the check after each download. */
  notModified(path: string): number;
  bytesServed(path: string): number;
  close(): Promise<void>;
}

interface Entry {
  readonly bytes: Buffer;
  readonly etag: string | null;
  readonly lastModified: string | null;
  readonly opts: UpstreamFileOptions;
  /** `opts.faults` not used yet. */
  readonly faults: UpstreamFileOptions[];
}

/** A fixed base keeps Last-Modified deterministic; each `set` moves it one hour later so changes are always newer. */
const BASE_TIME = Date.parse('2024-03-01T00:00:00Z');
const HOUR = 3_600_000;

export function strongEtag(bytes: Uint8Array | string): string {
  return `"${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}"`;
}

export async function createUpstream(): Promise<Upstream> {
  const files = new Map<string, Entry>();
  const requests: UpstreamRequestRecord[] = [];
  let sets = 0;

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const record: UpstreamRequestRecord = {
      path,
      method: req.method ?? '',
      headers: req.headers,
      status: 0,
      bodyBytes: 0,
    };
    requests.push(record);
    void respond(files.get(path), req.method ?? 'GET', req.headers, res, record).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;

  return {
    origin,
    url: (path) => `${origin}${path.startsWith('/') ? '' : '/'}${path}`,
    set(path, bytes, opts = {}) {
      const buf = Buffer.from(bytes);
      sets++;
      files.set(path, {
        bytes: buf,
        etag: opts.etag === false ? null : (opts.etag ?? strongEtag(buf)),
        lastModified:
          opts.lastModified === false ? null : (opts.lastModified ?? new Date(BASE_TIME + sets * HOUR).toUTCString()),
        opts,
        faults: [...(opts.faults ?? [])],
      });
    },
    requests,
    count: (path) => requests.filter((r) => r.path === path).length,
    downloads: (path) => requests.filter((r) => r.path === path && r.status === 200).length,
    notModified: (path) => requests.filter((r) => r.path === path && r.status === 304).length,
    bytesServed: (path) => requests.filter((r) => r.path === path).reduce((n, r) => n + r.bodyBytes, 0),
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

async function respond(
  stored: Entry | undefined,
  method: string,
  headers: IncomingHttpHeaders,
  res: ServerResponse,
  record: UpstreamRequestRecord,
): Promise<void> {
  const fault = stored && method === 'GET' && !notModified(stored, headers) ? stored.faults.shift() : undefined;
  const entry = stored && fault ? { ...stored, opts: { ...stored.opts, ...fault } } : stored;
  let gone = false;
  res.once('close', () => (gone = true));
  if (entry?.opts.delayMs) await pause(entry.opts.delayMs);
  if (entry?.opts.gate) await entry.opts.gate;
  if (gone) return;
  if (entry?.opts.reset) return void res.socket?.resetAndDestroy();
  if (entry?.opts.redirectTo !== undefined) {
    record.status = 302;
    return void res.writeHead(302, { location: entry.opts.redirectTo, 'content-length': 0 }).end();
  }
  if (!entry || (entry.opts.status !== undefined && entry.opts.status !== 200)) {
    const status = entry?.opts.status ?? 404;
    const page = entry?.opts.errorBody;
    const body = Buffer.from(page ? page.body : `upstream says ${status}\n`);
    record.status = status;
    res.writeHead(status, {
      'content-type': page ? page.contentType : 'text/plain',
      'content-length': body.byteLength,
    });
    if (method === 'HEAD') return void res.end();
    record.bodyBytes += body.byteLength;
    return void res.end(body);
  }
  const validators: Record<string, string> = {};
  if (entry.etag) validators['etag'] = entry.etag;
  if (entry.lastModified) validators['last-modified'] = entry.lastModified;
  if (notModified(entry, headers)) {
    record.status = 304;
    res.writeHead(304, validators);
    return void res.end();
  }
  const { bytes, opts } = entry;
  const from = opts.noRanges ? 0 : rangeStart(entry, headers);
  record.status = from > 0 ? 206 : 200;
  res.writeHead(record.status, {
    ...validators,
    'content-type': 'application/octet-stream',
    ...(from > 0 ? { 'content-range': `bytes ${from}-${bytes.byteLength - 1}/${bytes.byteLength}` } : {}),
    ...(opts.chunked ? {} : { 'content-length': bytes.byteLength - from }),
  });
  if (method === 'HEAD') return void res.end();
  // `truncateAt` and `endAt` are offsets in the file, whatever range was asked for.
  const limit = opts.truncateAt ?? opts.endAt ?? bytes.byteLength;
  const size = opts.chunkDelayMs || opts.bodyGate ? (opts.chunkSize ?? 1024) : limit;
  for (let at = from; at < limit; at += size) {
    if (gone) return;
    const chunk = bytes.subarray(at, Math.min(limit, at + size));
    await write(res, chunk);
    record.bodyBytes += chunk.byteLength;
    if (at === from && opts.bodyGate) await opts.bodyGate;
    if (opts.chunkDelayMs && at + size < limit) await pause(opts.chunkDelayMs);
  }
  if (opts.truncateAt !== undefined) {
    opts.onCut?.();
    // Content-Length promised more: the client must see the connection die mid-body.
    res.socket?.destroy();
    return;
  }
  if (opts.endAt !== undefined) {
    // Content-Length promised more, and the server says it is done: an orderly close (FIN) short of it.
    res.socket?.end();
    return;
  }
  res.end();
}

/**
 * Where a `Range: bytes=<n>-` GET starts (RFC 9110 14.2), 0 for the whole file: without `If-Range`, or when it is the
 * file's strong ETag (13.1.5: a weak or other validator means "send it all").
 */
function rangeStart(entry: Entry, headers: IncomingHttpHeaders): number {
  const m = /^bytes=(\d+)-$/.exec(headers['range']?.trim() ?? '');
  if (!m) return 0;
  const ifRange = headers['if-range'] as string | undefined;
  const strong = entry.etag !== null && !entry.etag.startsWith('W/');
  if (ifRange !== undefined && !(strong && ifRange.trim() === entry.etag)) return 0;
  const start = Number(m[1]);
  return start < entry.bytes.byteLength ? start : 0;
}

/**
 * RFC 9110 13.1.1-13.1.3: If-None-Match (weak comparison, lists, `*`) takes precedence; If-Modified-Since is only
 * evaluated without it.
 */
function notModified(entry: Entry, headers: IncomingHttpHeaders): boolean {
  const inm = headers['if-none-match'];
  if (inm !== undefined) {
    if (!entry.etag) return false;
    const bare = (t: string) => t.trim().replace(/^W\//, '');
    return inm.trim() === '*' || inm.split(',').some((t) => bare(t) === bare(entry.etag as string));
  }
  const ims = headers['if-modified-since'];
  if (ims !== undefined && entry.lastModified) {
    const since = Date.parse(ims);
    return !Number.isNaN(since) && Date.parse(entry.lastModified) <= since;
  }
  return false;
}

function write(res: ServerResponse, chunk: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    res.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
