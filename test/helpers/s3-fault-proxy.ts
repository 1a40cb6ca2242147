/**
 * A fault-injecting HTTP proxy in front of the test RGW: a real `http.createServer().listen(0)` on 127.0.0.1 that
 * forwards every request unchanged (method, path, headers with the Host as received, since SigV4 signs it; body
 * streamed) and, for requests a rule matches, answers 503 SlowDown, resets the connection in the middle of the
 * request body or of the response, or stalls (reads the request, never answers). It records every request it saw.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault =
  /** `503 SlowDown` with S3's XML error body, after the request body was read; nothing reaches RGW. */
  | '503'
  /** The connection is destroyed once part of the request body arrived; nothing reaches RGW. */
  | 'reset-request'
  /** The request reaches RGW (which stores a part), then the connection is destroyed inside the answer's headers. */
  | 'reset-response'
  /** The request body is read and then nothing is answered until the client gives up (its idle timeout). */
  | 'stall';

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** The fault injected into this request, if any. */
  fault: Fault | null;
  /** The status RGW (or the proxy's 503) answered; 0 when none was sent. */
  status: number;
}

export interface FaultRule {
  readonly match: (req: SeenRequest) => boolean;
  readonly fault: Fault;
  /** How many matching requests get the fault (default: every one, a persistent fault). */
  readonly times?: number;
}

export interface S3FaultProxy {
  /** `http://127.0.0.1:<port>`: the endpoint to give the S3 client. */
  readonly origin: string;
  readonly seen: readonly SeenRequest[];
  /** Adds a rule; the first rule with faults left that matches a request decides it. */
  inject(rule: FaultRule): void;
  /** Removes every rule (requests are forwarded unchanged again). */
  clear(): void;
  count(match: (req: SeenRequest) => boolean): number;
  close(): Promise<void>;
}

/** An UploadPart request of part `n` (`PUT /<bucket>/<key>?partNumber=n&uploadId=...`), whatever the upload. */
export const uploadPart =
  (n: number) =>
  (req: SeenRequest): boolean =>
    req.method === 'PUT' && req.query.get('partNumber') === String(n) && req.query.has('uploadId');

/** AbortMultipartUpload (`DELETE ...?uploadId=...`). */
export const abortUpload = (req: SeenRequest): boolean => req.method === 'DELETE' && req.query.has('uploadId');

/** CompleteMultipartUpload (`POST ...?uploadId=...`). */
export const completeUpload = (req: SeenRequest): boolean => req.method === 'POST' && req.query.has('uploadId');

const SLOW_DOWN =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

export async function createS3FaultProxy(target: string): Promise<S3FaultProxy> {
  const upstream = new URL(target);
  const seen: SeenRequest[] = [];
  const rules: { rule: FaultRule; left: number }[] = [];
  const sockets = new Set<Socket>();

  const pick = (req: SeenRequest): Fault | null => {
    for (const r of rules) {
      if (r.left > 0 && r.rule.match(req)) {
        r.left -= 1;
        return r.rule.fault;
      }
    }
    return null;
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const record: SeenRequest = {
      method: req.method ?? '',
      path: url.pathname,
      query: url.searchParams,
      fault: null,
      status: 0,
    };
    seen.push(record);
    record.fault = pick(record);
    switch (record.fault) {
      case '503':
        req.resume();
        req.once('end', () => {
          record.status = 503;
          res.writeHead(503, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(SLOW_DOWN) });
          res.end(SLOW_DOWN);
        });
        return;
      case 'reset-request': {
        // Cut after the first chunk of the body (or at once when there is none): the part never reaches RGW.
        const cut = () => req.socket.destroy();
        if (Number(req.headers['content-length'] ?? 0) > 0) req.once('data', cut);
        else cut();
        return;
      }
      case 'stall':
        // Read everything, answer nothing: the client's idle timeout is all that ends this exchange.
        req.resume();
        return;
      default:
        forward(req, res, record);
    }
  });

  const forward = (req: IncomingMessage, res: ServerResponse, record: SeenRequest): void => {
    const out = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        // As received: the Host header (and every other signed header) must reach RGW unchanged.
        headers: req.headers,
        // One connection per request: a reset or a stall on the client side never poisons a pooled one.
        agent: false,
      },
      (answer) => {
        record.status = answer.statusCode ?? 0;
        if (record.fault === 'reset-response') {
          answer.resume();
          // Half a status line and no headers: the client learns nothing of what RGW did with the request.
          req.socket.write(`HTTP/1.1 ${record.status} `);
          req.socket.destroy();
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        answer.pipe(res);
      },
    );
    out.on('error', () => req.socket.destroy());
    req.pipe(out);
  };
  // A 100-continue request is answered by the proxy itself (Node's default) and forwarded with its Expect header;
  // RGW's own 100 is an informational answer the proxy's client ignores.
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    seen,
    inject(rule) {
      rules.push({ rule, left: rule.times ?? Number.POSITIVE_INFINITY });
    },
    clear() {
      rules.length = 0;
    },
    count: (match) => seen.filter(match).length,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
