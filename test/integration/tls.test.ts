/**
 * Smart-proxy parity for Foreman's authentication: `serve --https-port` with a client certificate that must chain to
 * `--ssl-ca-file` and whose CN must be in `--trusted-hosts`. A real `pxecache serve` process bound to 0.0.0.0 with
 * both listeners, certificates made by `openssl` (test/helpers/pki.ts), and requests sent to this machine's
 * non-loopback address, so what lets Foreman in is the certificate and not the loopback rule.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken, tokenListEntry } from '../../src/core/auth.js';
import { nodeSha256 } from '../../src/runtime/node/hasher.js';
import { fetchBootFile, type Requester } from '../helpers/api.js';
import { createTestPki, type PemPair, type TestPki } from '../helpers/pki.js';
import { startServeProcess, type ServeProcess } from '../helpers/serve-process.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const ADMIN = 'pxc_tls-test-admin-token';
const MAC = 'aa:bb:cc:dd:ee:ff';
const PXECONFIG = 'DEFAULT linux\nLABEL linux\n KERNEL boot/t-vmlinuz\n';

/** An address of this machine that is not loopback: what a remote Foreman looks like to the server. */
function externalAddress(): string {
  const found = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
  if (!found) throw new Error('this test needs a non-loopback IPv4 interface to connect from');
  return found;
}

/** Requests over HTTPS presenting `client` (or no certificate), trusting only the test CA for the server. */
function httpsClient(base: string, pki: TestPki, client: PemPair | null) {
  const dispatcher = new Agent({
    connect: { ca: pki.ca, ...(client ? { cert: client.cert, key: client.key } : {}) },
  });
  const request: Requester = async (path, init) =>
    (await undiciFetch(base + path, {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher,
    })) as unknown as Response;
  return { request, close: () => dispatcher.close() };
}

/** The TLS failure behind a refused request: undici's "fetch failed" carries the socket error as its cause. */
async function refusal(attempt: Promise<unknown>): Promise<string> {
  const err = await attempt.then(
    () => {
      throw new Error('expected the TLS handshake to be refused, but the request got an answer');
    },
    (e: unknown) => e as Error & { cause?: Error & { code?: string } },
  );
  return `${err.cause?.code ?? ''} ${err.cause?.message ?? err.message}`;
}

describe('serve --https-port: client certificates, as Foreman authenticates to a smart proxy', () => {
  let dir: string;
  let pki: TestPki;
  let upstream: Upstream;
  let server: ServeProcess;
  let external: string;
  const clients: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -p tsconfig.build.json" first`);
    dir = await mkdtemp(join(tmpdir(), 'pxecache-tls-'));
    external = externalAddress();
    pki = await createTestPki(join(dir, 'pki'), ['127.0.0.1', external]);
    upstream = await createUpstream();
    upstream.set('/images/vmlinuz', 'kernel fetched over https');
    upstream.set('/images/refused', 'never fetched');
    server = await startServeProcess(join(dir, 'store'), [
      ...['--host', '0.0.0.0', '--https-port', '0', '--server-name', '192.0.2.10'],
      ...['--ssl-certificate', pki.server.certFile, '--ssl-private-key', pki.server.keyFile],
      // Upper case on purpose: CNs and trusted hosts compare case-insensitively, as in smart-proxy.
      ...['--ssl-ca-file', pki.caFile, '--trusted-hosts', 'FOREMAN.example.com, other.example.com'],
      ...['--tokens', tokenListEntry({ id: 'ops', sha256: await hashToken(ADMIN, nodeSha256), scopes: ['admin'] })],
    ]);
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    await server?.stop();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The HTTPS listener at this machine's non-loopback address. */
  function overHttps(client: PemPair | null) {
    const port = new URL(server.httpsUrl ?? '').port;
    const c = httpsClient(`https://${external}:${port}`, pki, client);
    clients.push(c);
    return c.request;
  }
  const overHttp = (host: string): Requester => {
    const port = new URL(server.url).port;
    return (path, init) => fetch(`http://${host}:${port}${path}`, init);
  };
  const postConfig = (request: Requester) =>
    request(`/tftp/PXELinux/${MAC}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ pxeconfig: PXECONFIG }).toString(),
    });

  it('logs both listeners: url stays the HTTP one, httpsUrl is the HTTPS one', () => {
    expect(server.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
    expect(server.httpsUrl).toMatch(/^https:\/\/0\.0\.0\.0:\d+$/);
    expect(server.logs.find((l) => l.msg === 'authentication')).toMatchObject({
      smartProxy: 'loopback-only',
      trustedHosts: ['foreman.example.com', 'other.example.com'],
    });
  });

  it('lets a trusted client certificate call fetch_boot_file and the pxeconfig routes from a remote address', async () => {
    const request = overHttps(pki.trusted);
    const res = await fetchBootFile(request, { prefix: 'boot/t', path: upstream.url('/images/vmlinuz') });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.text()).toBe('');

    expect((await postConfig(request)).status).toBe(200);
    const read = await request(`/tftp/PXELinux/${MAC}`);
    expect(read.status).toBe(200);
    expect(await read.text()).toBe(PXECONFIG);

    const features = await request('/v2/features');
    expect(features.status).toBe(200);
    expect(await features.json()).toMatchObject({ tftp: { http_enabled: true, https_enabled: true } });

    // The fetch really ran: the native API (with a token, over the same HTTPS listener) reports it ready.
    const status = await waitFor('boot/t-vmlinuz ready', async () => {
      const r = await request('/api/v1/files/boot/t-vmlinuz', { headers: { authorization: `Bearer ${ADMIN}` } });
      const body = (await r.json()) as { state?: string };
      return { done: body.state === 'ready', value: body };
    });
    expect(status.state).toBe('ready');
    expect(upstream.count('/images/vmlinuz')).toBeGreaterThan(0);

    // The audit line names the certificate's CN and the remote (non-loopback) address.
    expect(server.logs).toContainEqual(
      expect.objectContaining({
        msg: 'smart-proxy request',
        client: 'foreman.example.com',
        method: 'POST',
        path: '/tftp/fetch_boot_file',
        status: 200,
        remote: external,
      }),
    );
  });

  it('keeps the loopback rule on plain HTTP: the same remote caller without a certificate gets 403', async () => {
    const remote = await fetchBootFile(overHttp(external), {
      prefix: 'boot/r',
      path: upstream.url('/images/refused'),
    });
    expect(remote.status).toBe(403);
    expect(await remote.text()).toMatch(
      /^smart-proxy routes over plain HTTP answer loopback clients only: .*--https-port/,
    );
    expect((await postConfig(overHttp(external))).status).toBe(403);
    expect((await overHttp('127.0.0.1')('/tftp/serverName')).status).toBe(200);
    expect(upstream.count('/images/refused')).toBe(0);
  });

  it('grants no native API scope to a client certificate: bearer tokens still required over HTTPS', async () => {
    const res = await overHttps(pki.trusted)('/api/v1/files');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
  });

  it('answers 403 "Untrusted client <cn> ..." to a valid certificate whose CN is not trusted (SANs do not count)', async () => {
    const request = overHttps(pki.untrusted);
    const res = await fetchBootFile(request, { prefix: 'boot/r', path: upstream.url('/images/refused') });
    expect(res.status).toBe(403);
    expect(await res.text()).toBe(
      'Untrusted client intruder.example.com attempted to access /tftp/fetch_boot_file. Check --trusted-hosts',
    );
    const config = await postConfig(request);
    expect(config.status).toBe(403);
    expect(await config.text()).toBe(
      `Untrusted client intruder.example.com attempted to access /tftp/PXELinux/${MAC}. Check --trusted-hosts`,
    );
    // Open routes stay open; nothing was fetched.
    expect((await request('/features')).status).toBe(200);
    expect(upstream.count('/images/refused')).toBe(0);
    expect(server.logs).toContainEqual(
      expect.objectContaining({ msg: 'smart-proxy request refused', client: 'intruder.example.com', remote: external }),
    );
  });

  it('refuses the connection to a certificate from another CA, an expired one, and to no certificate at all', async () => {
    const attempt = async (client: PemPair | null) => {
      const before = server.logs.length;
      const failure = await refusal(
        fetchBootFile(overHttps(client), { prefix: 'boot/r', path: upstream.url('/images/refused') }),
      );
      const refused = await waitFor('a "tls handshake refused" line', async () => {
        const line = server.logs.slice(before).find((l) => l.msg === 'tls handshake refused');
        return { done: line !== undefined, value: line };
      });
      return { failure, refused };
    };
    // No HTTP answer at all: the connection ends before a request is read. Node verifies the chain during the
    // handshake and destroys the socket at its end (TLS 1.3: after the client sent its request), so the client sees
    // a closed socket or an alert, and the reason is in the server's log.
    const closed = /other side closed|socket hang up|ECONNRESET|alert/i;
    const wrongCa = await attempt(pki.wrongCa);
    expect(wrongCa.failure).toMatch(closed);
    expect(wrongCa.refused).toMatchObject({ remote: external, reason: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    const expired = await attempt(pki.expired);
    expect(expired.failure).toMatch(closed);
    expect(expired.refused).toMatchObject({ remote: external, reason: 'CERT_HAS_EXPIRED' });
    const none = await attempt(null);
    expect(none.failure).toMatch(closed);
    expect(none.refused).toMatchObject({ remote: external, reason: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' });
    expect(upstream.count('/images/refused')).toBe(0);
    expect(server.logs.filter((l) => l.msg === 'fetch_boot_file accepted' && l['name'] === 'boot/r-refused')).toEqual(
      [],
    );
  });
});

describe('serve --https-port --no-http, and refused HTTPS configurations', () => {
  let dir: string;
  let pki: TestPki;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -p tsconfig.build.json" first`);
    dir = await mkdtemp(join(tmpdir(), 'pxecache-tls-config-'));
    pki = await createTestPki(join(dir, 'pki'), ['127.0.0.1']);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('serves HTTPS only with --no-http: url is the HTTPS listener, /v2/features says http_enabled false', async () => {
    const server = await startServeProcess(join(dir, 'store'), [
      ...['--no-http', '--https-port', '0', '--ssl-certificate', pki.server.certFile],
      ...[
        '--ssl-private-key',
        pki.server.keyFile,
        '--ssl-ca-file',
        pki.caFile,
        '--trusted-hosts',
        'foreman.example.com',
      ],
    ]);
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(server.httpsUrl).toBe(server.url);
      const client = httpsClient(server.url, pki, pki.trusted);
      try {
        const res = await client.request('/v2/features');
        expect(await res.json()).toMatchObject({ tftp: { http_enabled: false, https_enabled: true } });
      } finally {
        await client.close();
      }
    } finally {
      await server.stop();
    }
  });

  /** Runs `serve` expecting a refusal; returns its stderr. */
  async function refusedStart(args: string[]): Promise<string> {
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--store', `file:${join(dir, 'x')}`, ...args], {
      env: { PATH: process.env['PATH'] ?? '' },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code, stderr).toBe(2);
    expect(existsSync(join(dir, 'x'))).toBe(false);
    return stderr;
  }

  it('refuses --https-port without its certificate, key, CA and trusted hosts, naming each (exit 2)', async () => {
    const stderr = await refusedStart(['--https-port', '0']);
    for (const [flag, setting] of [
      ['ssl-certificate', 'ssl_certificate'],
      ['ssl-private-key', 'ssl_private_key'],
      ['ssl-ca-file', 'ssl_ca_file'],
      ['trusted-hosts', 'trusted_hosts'],
    ])
      expect(stderr).toContain(`--${flag}: required with --https-port (smart-proxy's ${setting})`);
  });

  it('refuses a key that is not the certificate’s, a CA file without a certificate, and --no-http alone', async () => {
    const notPem = join(dir, 'not-a-ca.pem');
    await writeFile(notPem, 'hello\n');
    const stderr = await refusedStart([
      ...['--https-port', '0', '--ssl-certificate', pki.server.certFile, '--ssl-private-key', pki.trusted.keyFile],
      ...['--ssl-ca-file', notPem, '--trusted-hosts', 'foreman.example.com'],
    ]);
    expect(stderr).toContain('--ssl-private-key: is not the key of --ssl-certificate');
    expect(stderr).toContain('--ssl-ca-file: no PEM certificate');
    expect(await refusedStart(['--no-http'])).toContain('--no-http: needs --https-port');
    expect(await refusedStart(['--ssl-ca-file', pki.caFile])).toContain('--ssl-ca-file: only used with --https-port');
  });
});
