/**
 * An upstream for benchmarks: serves `/<bytes>/<name>` as that many deterministic pseudo-random bytes with a
 * Content-Length and an ETag, generated on the fly (no disk in the way), with backpressure. A conditional GET whose
 * If-None-Match carries that ETag gets a 304, as a mirror answers an unchanged file. Every request is counted by
 * path, so a case can tell how many times pxecache went upstream.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const BLOCK = randomBytes(1 << 20);

export interface DataServer {
  url: (bytes: number, name?: string) => string;
  /** Requests received so far for exactly this URL (as made by `url`), or for every URL without one. */
  requests(url?: string): number;
  /** How many of those were answered 304. */
  notModified(url?: string): number;
  close(): void;
  server: Server;
}

export async function startDataServer(): Promise<DataServer> {
  const seen = new Map<string, { all: number; notModified: number }>();
  const count = (path: string, notModified: boolean) => {
    const entry = seen.get(path) ?? { all: 0, notModified: 0 };
    entry.all += 1;
    if (notModified) entry.notModified += 1;
    seen.set(path, entry);
  };
  const server = createServer((req, res) => {
    const m = /^\/(\d+)\/([^/?]+)/.exec(req.url ?? '');
    if (!m) {
      count(req.url ?? '', false);
      return res.writeHead(404).end();
    }
    const size = Number(m[1]);
    const etag = `"${size}-${m[2]}"`;
    const unchanged = req.headers['if-none-match'] === etag;
    count(m[0], unchanged);
    if (unchanged) return res.writeHead(304, { etag }).end();
    res.writeHead(200, {
      'content-length': size,
      etag,
      'content-type': 'application/octet-stream',
    });
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        const n = Math.min(BLOCK.length, size - sent);
        sent += n;
        if (!res.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const total = (pick: (e: { all: number; notModified: number }) => number, url?: string) => {
    if (url !== undefined) {
      const entry = seen.get(new URL(url).pathname);
      return entry ? pick(entry) : 0;
    }
    let sum = 0;
    for (const entry of seen.values()) sum += pick(entry);
    return sum;
  };
  return {
    url: (bytes, name = 'vmlinuz') => `${base}/${bytes}/${name}`,
    requests: (url) => total((e) => e.all, url),
    notModified: (url) => total((e) => e.notModified, url),
    close: () => server.close(),
    server,
  };
}
