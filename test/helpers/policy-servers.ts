/**
 * Servers for the upstream policy tests (test/integration/upstream-policy.test.ts): an origin that counts TCP
 * connections (so a test can assert that nothing connected), a forward proxy, a resolver answering test names, and a
 * private CA made with openssl.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { connect as netConnect, isIP, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Resolver } from '../../src/runtime/node/guarded-lookup.js';

export const BYTES = Buffer.alloc(64 * 1024, 9);

/** A file server that counts TCP connections, so a test can assert that nothing connected. */
export interface Origin {
  readonly server: Server;
  readonly port: number;
  connections: number;
  requests: string[];
}

function handler(origin: { requests: string[] }) {
  return (req: IncomingMessage, res: ServerResponse) => {
    origin.requests.push(`${req.method} ${req.url} host=${req.headers.host}`);
    const url = req.url ?? '/';
    if (url === '/vmlinuz') return res.writeHead(200, { 'content-length': BYTES.length }).end(BYTES);
    if (url === '/stall/vmlinuz') {
      res.writeHead(200, { 'content-length': BYTES.length });
      res.write(BYTES.subarray(0, BYTES.length / 2));
      return;
    }
    if (url === '/to-metadata') return res.writeHead(302, { location: 'http://0xa9fea9fe/latest/' }).end();
    if (url === '/to-rebind/vmlinuz')
      return res.writeHead(302, { location: `http://rebind.test:${req.socket.localPort}/vmlinuz` }).end();
    res.writeHead(404).end();
  };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

export async function startOrigin(make: (h: ReturnType<typeof handler>) => Server = createHttpServer): Promise<Origin> {
  const origin = { connections: 0, requests: [] as string[] } as Origin;
  const server = make(handler(origin));
  server.on('connection', () => origin.connections++);
  return Object.assign(origin, { server, port: await listen(server) });
}

export async function stop(server: Server) {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** The injected fault: `name -> addresses`, as a resolver answering for names DNS cannot be made to answer here. */
export function fakeDns(names: Record<string, readonly string[]>): Resolver {
  return async (host) => {
    const addresses = names[host];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: isIP(address) }));
  };
}

/** A forward proxy: absolute-URI requests (http://) are forwarded, CONNECT (https://) is tunnelled. */
export async function startProxy() {
  const seen: string[] = [];
  const server = createHttpServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      return res.writeHead(400).end('not a proxy request');
    }
    const forward = httpRequest(target, { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    forward.on('error', () => res.writeHead(502).end());
    req.pipe(forward);
  });
  server.on('connect', (req: IncomingMessage, client, head: Buffer) => {
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? '').split(':');
    const up = netConnect(Number(port), host ?? '', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(client).on('error', () => undefined);
      client.pipe(up).on('error', () => undefined);
    });
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  const port = await listen(server);
  return { server, seen, url: `http://127.0.0.1:${port}` };
}

/**
 * A private CA and a server certificate it signs for 127.0.0.1 (what an internal mirror has); the server sends its
 * own certificate only, so a client must know the CA.
 */
export function makePrivateCa(dir: string): { caFile: string; server: { key: Buffer; cert: Buffer } } {
  const openssl = (args: string) => execFileSync('openssl', args.split(' '), { cwd: dir, stdio: 'ignore' });
  openssl(
    'req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pxecache-test-CA -keyout ca.key -out ca.pem ' +
      '-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign',
  );
  openssl('req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out csr.pem');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  openssl('x509 -req -in csr.pem -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out cert.pem');
  return {
    caFile: join(dir, 'ca.pem'),
    server: { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
  };
}
