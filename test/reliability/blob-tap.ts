/**
 * A pass-through HTTP proxy between the agent and `pxecache serve` that counts the blob bytes it forwards, so the
 * harness can kill the agent in the middle of a download (its temporary file open and partly written). Left to
 * timers, kills land almost always in the catalog poll: a download of a few MiB is over within milliseconds.
 * Free of vitest imports.
 */
import { request, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface BlobTap {
  readonly url: string;
  /** Resolves once `bytes` more blob body bytes have passed after this call (across responses). */
  after(bytes: number): Promise<void>;
  /** Drops a pending `after`: its promise never resolves. */
  disarm(): void;
  close(): Promise<void>;
}

export async function startBlobTap(target: string): Promise<BlobTap> {
  const upstream = new URL(target);
  let armed: { left: number; fire: () => void } | null = null;
  const server = createServer((req, res) => {
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        const isBlob = (req.url ?? '').startsWith('/api/v1/blobs/');
        up.on('data', (chunk: Buffer) => {
          if (isBlob && armed) {
            armed.left -= chunk.byteLength;
            if (armed.left <= 0) {
              const { fire } = armed;
              armed = null;
              fire();
            }
          }
          res.write(chunk);
        });
        up.on('end', () => res.end());
        up.on('error', () => res.destroy());
      },
    );
    out.on('error', () => res.destroy());
    // The agent going away (SIGKILL) must not leave the request to serve hanging.
    res.on('close', () => out.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    after: (bytes) => new Promise<void>((fire) => (armed = { left: Math.max(1, bytes), fire })),
    disarm: () => void (armed = null),
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
