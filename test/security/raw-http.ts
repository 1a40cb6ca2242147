/**
 * An HTTP/1.1 client that sends the request target and headers byte for byte. fetch() (and node:http) normalise or
 * refuse the very inputs the security corpus is about: dot segments, backslashes, raw NUL and control bytes, absolute
 * request targets. One connection per request, dropped once a whole answer is read.
 *
 * No `Connection: close`: a server answering early (413) and then closing with the rest of the body unread makes
 * the kernel send RST, which discards the answer on our side before it is read. Kept alive, the server reads and
 * discards the rest of the body (node:http does) and the answer always arrives.
 */
import { connect } from 'node:net';

export interface RawRequest {
  readonly method: string;
  /** The request target exactly as sent (`/tftp/..%2f`, `http://x/y`, anything). */
  readonly target: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  /** Send the body with `Transfer-Encoding: chunked` instead of a Content-Length. */
  readonly chunked?: boolean;
}

export interface RawResponse {
  readonly status: number;
  /** The status line's reason phrase. */
  readonly reason: string;
  /** Lower-cased names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

const CHUNK = 64 * 1024;

export async function rawRequest(origin: string, req: RawRequest, timeoutMs = 15_000): Promise<RawResponse> {
  const { hostname, port } = new URL(origin);
  const socket = connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port) });
  const received: Buffer[] = [];
  let writeError: Error | null = null;
  const done = new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer to ${req.method} ${req.target.slice(0, 80)} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (d: Buffer) => {
      received.push(d);
      if (parse(Buffer.concat(received), true)) socket.destroy();
    });
    // A server may answer early (413) and close while the body is still being sent: EPIPE/ECONNRESET on our side
    // is then expected, and what counts is the answer it sent before.
    socket.on('error', (err) => (writeError ??= err));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(received));
    });
  });

  const lines = [`${req.method} ${req.target} HTTP/1.1`, `host: ${new URL(origin).host}`];
  for (const [k, v] of Object.entries(req.headers ?? {})) lines.push(`${k}: ${v}`);
  const declared = Object.keys(req.headers ?? {}).some((k) => k.toLowerCase() === 'content-length');
  if (req.body !== undefined && !declared)
    lines.push(req.chunked ? 'transfer-encoding: chunked' : `content-length: ${req.body.length}`);
  // UTF-8, as a hostile client would send a look-alike written raw (a target must be ASCII; servers must cope).
  await write(socket, Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'utf8'));
  if (req.body !== undefined) {
    for (let at = 0; at < req.body.length && !socket.destroyed; at += CHUNK) {
      const piece = req.body.subarray(at, at + CHUNK);
      const framed = req.chunked
        ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')])
        : piece;
      if (!(await write(socket, framed))) break;
    }
    if (req.chunked && !socket.destroyed) await write(socket, Buffer.from('0\r\n\r\n'));
  }
  const raw = await done;
  const parsed = parse(raw);
  if (!parsed)
    throw new Error(
      `no HTTP answer to ${req.method} ${req.target.slice(0, 80)}` +
        `${writeError ? ` (${(writeError as Error).message})` : ''}: ${JSON.stringify(raw.toString('latin1').slice(0, 200))}`,
    );
  return parsed;
}

/** Resolves false once the socket is gone (the server closed it), true when the bytes were handed to the kernel. */
function write(socket: ReturnType<typeof connect>, bytes: Uint8Array): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(false);
    socket.write(bytes, (err) => resolve(!err));
  });
}

/** The answer in `raw`, or null; with `complete`, null too while its body is still incomplete. */
function parse(raw: Buffer, complete = false): RawResponse | null {
  const end = raw.indexOf('\r\n\r\n');
  if (end === -1) return null;
  const [statusLine = '', ...headerLines] = raw.subarray(0, end).toString('latin1').split('\r\n');
  const [, status, reason = ''] = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine) ?? [];
  if (status === undefined) return null;
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon === -1) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let body = raw.subarray(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    if (complete && !/(^|\r\n)0\r\n\r\n$/.test(body.toString('latin1'))) return null;
    body = dechunk(body);
  } else if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (complete && body.length < length) return null;
    body = body.subarray(0, length);
  } else if (complete && status !== '304' && status !== '204') return null; // delimited by the close
  return { status: Number(status), reason, headers, body };
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol === -1) break;
    const size = parseInt(data.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}
