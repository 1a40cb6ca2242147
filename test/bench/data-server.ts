/**
 * An upstream for benchmarks: serves `/<bytes>/<name>` as that many deterministic pseudo-random bytes with a
 * Content-Length and an ETag, generated on the fly (no disk in the way), with backpressure.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const BLOCK = randomBytes(1 << 20);

export async function startDataServer(): Promise<{
  url: (bytes: number, name?: string) => string;
  close(): void;
  server: Server;
}> {
  const server = createServer((req, res) => {
    const m = /^\/(\d+)\/([^/?]+)/.exec(req.url ?? '');
    if (!m) return res.writeHead(404).end();
    const size = Number(m[1]);
    res.writeHead(200, {
      'content-length': size,
      etag: `"${size}-${m[2]}"`,
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
  return { url: (bytes, name = 'vmlinuz') => `${base}/${bytes}/${name}`, close: () => server.close(), server };
}
