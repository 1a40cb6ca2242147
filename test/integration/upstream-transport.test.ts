/**
 * Transport settings of the upstream client (issue: timeouts, TLS verification, redirects), against real servers on
 * loopback: an HTTPS upstream with a certificate the test makes with openssl, a server that stalls mid-body, redirect
 * chains.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../helpers/app-harness.js';

const BYTES = Buffer.alloc(256 * 1024, 7);

function handler(req: IncomingMessage, res: ServerResponse) {
  const url = req.url ?? '/';
  if (url === '/ok/vmlinuz') return res.writeHead(200, { 'content-length': BYTES.length }).end(BYTES);
  if (url === '/stall/vmlinuz') {
    // Headers and half the body, then silence: the idle timeout must fire, not wait forever.
    res.writeHead(200, { 'content-length': BYTES.length });
    res.write(BYTES.subarray(0, BYTES.length / 2));
    return;
  }
  const hop = /^\/hop\/(\d+)\/vmlinuz$/.exec(url);
  if (hop) {
    const n = Number(hop[1]);
    return n === 0
      ? res.writeHead(302, { location: '/ok/vmlinuz' }).end()
      : res.writeHead(302, { location: `/hop/${n - 1}/vmlinuz` }).end();
  }
  if (url === '/loop/vmlinuz') return res.writeHead(301, { location: '/loop/vmlinuz' }).end();
  if (url === '/to-file/vmlinuz') return res.writeHead(302, { location: 'file:///etc/passwd' }).end();
  res.writeHead(404).end();
}

const listen = async (server: NetServer) => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
};

describe('upstream transport', () => {
  let dir: string;
  let http: ReturnType<typeof createHttpServer>;
  let https: ReturnType<typeof createHttpsServer>;
  let httpBase: string;
  let httpsBase: string;
  const harnesses: Harness[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pxecache-transport-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    http = createHttpServer(handler);
    https = createHttpsServer(
      { key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) },
      handler,
    );
    httpBase = `http://127.0.0.1:${await listen(http)}`;
    httpsBase = `https://127.0.0.1:${await listen(https)}`;
  });
  afterAll(async () => {
    for (const h of harnesses) await h.close();
    http.closeAllConnections();
    https.closeAllConnections();
    http.close();
    https.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function fetchOnce(url: string, settings: Parameters<typeof createHarness>[0]['settings'] = {}) {
    const h = await createHarness({ transport: 'app.request', settings });
    harnesses.push(h);
    const submitted = await h.fetcher.submit({ prefix: 'boot/t', path: url });
    return submitted.done;
  }

  it('refuses an upstream certificate it cannot verify by default (code tls)', async () => {
    const status = await fetchOnce(`${httpsBase}/ok/vmlinuz`);
    expect(status.state).toBe('failed');
    expect(status.error?.code).toBe('tls');
    expect(status.version).toBeNull();
  });

  it('accepts it when verification is turned off, like smart-proxy verify_server_cert: false', async () => {
    const status = await fetchOnce(`${httpsBase}/ok/vmlinuz`, { 'verify-tls': false });
    expect(status.state).toBe('ready');
    expect(status.size).toBe(BYTES.length);
  });

  it('fails a body that stalls longer than the idle timeout (code timeout), publishing nothing', async () => {
    const status = await fetchOnce(`${httpBase}/stall/vmlinuz`, { 'idle-timeout': 1 });
    expect(status.state).toBe('failed');
    expect(status.error?.code).toBe('timeout');
    expect(status.generation).toBe(0);
  });

  it('follows up to max-redirects hops and refuses one more', async () => {
    expect((await fetchOnce(`${httpBase}/hop/2/vmlinuz`, { 'max-redirects': 3 })).state).toBe('ready');
    const refused = await fetchOnce(`${httpBase}/hop/3/vmlinuz`, { 'max-redirects': 3 });
    expect(refused.error?.code).toBe('too-many-redirects');
    expect((await fetchOnce(`${httpBase}/loop/vmlinuz`)).error?.code).toBe('too-many-redirects');
  });

  it('refuses a redirect to a scheme it would refuse from a caller', async () => {
    const status = await fetchOnce(`${httpBase}/to-file/vmlinuz`);
    expect(status.state).toBe('failed');
    expect(status.error?.code).toBe('redirect-refused');
  });

  it('fails fast on a refused connection (code connect)', async () => {
    const closed = createHttpServer();
    const port = await listen(closed);
    closed.close();
    const status = await fetchOnce(`http://127.0.0.1:${port}/vmlinuz`);
    expect(status.error?.code).toBe('connect');
  });
});

describe('credentials in media URLs', () => {
  it('sends them as Basic auth, like curl, and never shows the password in the status', async () => {
    const seen: (string | undefined)[] = [];
    const server = createHttpServer((req, res) => {
      // The checksum documents next to it (docs/integrity.md) are asked for with the same credentials: none here.
      if (req.url !== '/vmlinuz') return void res.writeHead(404).end();
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-length': 5 }).end('hello');
    });
    const port = await listen(server);
    const h = await createHarness({ transport: 'app.request' });
    try {
      const submitted = await h.fetcher.submit({
        prefix: 'boot/t',
        path: `http://mirror:s%40cret@127.0.0.1:${port}/vmlinuz`,
      });
      const status = await submitted.done;
      expect(status.state).toBe('ready');
      expect(seen).toEqual([`Basic ${Buffer.from('mirror:s@cret').toString('base64')}`]);
      const shown = JSON.stringify(await (await h.request('/api/v1/files/boot/t-vmlinuz')).json());
      expect(shown).not.toContain('cret');
      expect(shown).toContain('mirror:***@127.0.0.1');
      expect(JSON.stringify(h.logs)).not.toContain('cret');
    } finally {
      await h.close();
      server.close();
    }
  });
});
