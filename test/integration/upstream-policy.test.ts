/**
 * The upstream policy against real servers on loopback (security issue part 3): connect-time checks of resolved
 * addresses (DNS rebinding), `--upstream-allow` with CIDRs, http_proxy/https_proxy/no_proxy through a forward proxy
 * started here, and `--upstream-ca-file` with a CA made here with openssl (servers: test/helpers/policy-servers.ts).
 *
 * DNS cannot be made to answer 169.254.169.254 for a name in a test, so that one fault is injected: the fetcher's
 * resolver maps test names (`*.test`) to chosen addresses. Everything else is real sockets.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'basic-ftp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { DEFAULT_HOST_RULES } from '../../src/core/host-rules.js';
import { silentLogger } from '../../src/core/ports.js';
import type { FileStatus } from '../../src/core/records.js';
import { createNodeFetcher, type UpstreamSettings } from '../../src/runtime/node/fetcher-deps.js';
import { guardSockets } from '../../src/runtime/node/ftp-guard.js';
import type { Resolver } from '../../src/runtime/node/guarded-lookup.js';
import { createFileStore } from '../../src/storage/file-store.js';
import { fetchBootFile } from '../helpers/api.js';
import { createHarness, TRANSPORTS, TEST_SETTINGS } from '../helpers/app-harness.js';
import {
  BYTES,
  fakeDns,
  makePrivateCa,
  startOrigin,
  startProxy,
  stop,
  type Origin,
} from '../helpers/policy-servers.js';
import { withoutChecksumDocuments } from '../helpers/checksum-media.js';

const SETTINGS = TEST_SETTINGS;

interface FetchOptions {
  readonly settings?: Partial<UpstreamSettings>;
  readonly env?: Record<string, string>;
  readonly resolve?: Resolver;
}

const dirs: string[] = [];

/** One fetch through the Node fetcher wiring `serve` uses (undici, basic-ftp, the policy), with a fresh file store. */
async function fetchOnce(path: string, opts: FetchOptions = {}): Promise<FileStatus> {
  const dir = await mkdtemp(join(tmpdir(), 'pxecache-policy-'));
  dirs.push(dir);
  const { fetcher, close } = createNodeFetcher(
    createFileStore({ root: dir }),
    { ...SETTINGS, ...opts.settings },
    silentLogger,
    undefined,
    // Never the real environment: a proxy set on the machine running the tests must not change what they see.
    { env: opts.env ?? {}, ...(opts.resolve ? { resolve: opts.resolve } : {}) },
  );
  try {
    const submitted = await fetcher.submit({ prefix: 'boot/t', path });
    return await submitted.done;
  } finally {
    await close();
  }
}

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('upstream policy at connect time (DNS rebinding)', () => {
  let origin: Origin;
  beforeAll(async () => {
    origin = await startOrigin();
  });
  afterAll(() => stop(origin.server));

  it('refuses a name that resolves to the metadata address: code policy, and no connection is attempted', async () => {
    // rebind.test also resolves to the live origin: a client that tried addresses in turn would reach it. None may.
    const resolve = fakeDns({ 'rebind.test': ['127.0.0.1', '169.254.169.254'] });
    const before = origin.connections;
    const status = await fetchOnce(`http://rebind.test:${origin.port}/vmlinuz`, { resolve });
    expect(status.state).toBe('failed');
    expect(status.error?.code).toBe('policy');
    expect(status.error?.message).toContain(
      'resolved rebind.test to 169.254.169.254, which is refused by the default rule 169.254.0.0/16',
    );
    expect(status.generation).toBe(0);
    expect(origin.connections).toBe(before);
    expect(origin.requests).toEqual([]);
  });

  it('refuses IPv6 answers too: link-local, and an IPv4-mapped metadata address', async () => {
    const resolve = fakeDns({ 'v6.test': ['fe80::1'], 'mapped.test': ['::ffff:169.254.169.254'] });
    const v6 = await fetchOnce(`http://v6.test:${origin.port}/vmlinuz`, { resolve });
    expect(v6.error?.code).toBe('policy');
    expect(v6.error?.message).toContain('fe80::/10');
    const mapped = await fetchOnce(`https://mapped.test:${origin.port}/vmlinuz`, { resolve });
    expect(mapped.error?.code).toBe('policy');
    expect(mapped.error?.message).toContain('169.254.0.0/16');
  });

  it('fetches through a name that resolves to loopback (allowed by default)', async () => {
    const status = await fetchOnce(`http://media.test:${origin.port}/vmlinuz`, {
      resolve: fakeDns({ 'media.test': ['127.0.0.1'] }),
    });
    expect(status.state, JSON.stringify(status.error)).toBe('ready');
    expect(status.size).toBe(BYTES.length);
    expect(withoutChecksumDocuments(origin.requests).at(-1)).toBe(`GET /vmlinuz host=media.test:${origin.port}`);
  });

  it('refuses a redirect to a denied literal without following it (code redirect-refused)', async () => {
    const status = await fetchOnce(`http://127.0.0.1:${origin.port}/to-metadata`);
    expect(status.error?.code).toBe('redirect-refused');
    expect(status.error?.message).toContain('address 169.254.169.254 is refused by the default rule 169.254.0.0/16');
  });

  it('refuses a redirect to a name that resolves to a denied address (checked when it connects)', async () => {
    const resolve = fakeDns({ 'media.test': ['127.0.0.1'], 'rebind.test': ['169.254.169.254'] });
    const status = await fetchOnce(`http://media.test:${origin.port}/to-rebind/vmlinuz`, { resolve });
    expect(status.error?.code).toBe('policy');
    expect(status.error?.message).toContain('resolved rebind.test to 169.254.169.254');
  });

  it('refuses an ftp:// host that resolves to a denied address before connecting', async () => {
    const status = await fetchOnce(`ftp://rebind.test:${origin.port}/vmlinuz`, {
      resolve: fakeDns({ 'rebind.test': ['169.254.169.254'] }),
    });
    expect(status.error?.code).toBe('policy');
    expect(status.error?.message).toContain('resolved rebind.test to 169.254.169.254');
  });

  it('checks every socket the FTP client opens (control and PASV/EPSV data connections)', async () => {
    const client = new Client(2_000);
    guardSockets(client, DEFAULT_HOST_RULES, 'mirror.test');
    const before = origin.connections;
    await expect(client.access({ host: '169.254.169.254', port: origin.port })).rejects.toMatchObject({
      code: 'policy',
      message: expect.stringContaining(
        'connecting to 169.254.169.254 for mirror.test is refused by the default rule 169.254.0.0/16',
      ) as unknown,
    });
    // A name instead of a checked address is refused too: the guard never lets a socket resolve on its own.
    await expect(client.access({ host: 'localhost', port: origin.port })).rejects.toMatchObject({ code: 'policy' });
    client.close();
    expect(origin.connections).toBe(before);
  });
});

describe('--upstream-allow with CIDRs', () => {
  let origin: Origin;
  beforeAll(async () => {
    origin = await startOrigin();
  });
  afterAll(() => stop(origin.server));
  const resolve = fakeDns({ 'media.test': ['127.0.0.1'] });

  it('fetches from a listed range, by address and by a name resolving into it', async () => {
    const settings = { 'upstream-allow': '127.0.0.0/8' };
    expect((await fetchOnce(`http://127.0.0.1:${origin.port}/vmlinuz`, { settings })).state).toBe('ready');
    expect((await fetchOnce(`http://media.test:${origin.port}/vmlinuz`, { settings, resolve })).state).toBe('ready');
  });

  it('refuses a name resolving outside the list at connect time, nothing connected', async () => {
    const before = origin.connections;
    const status = await fetchOnce(`http://media.test:${origin.port}/vmlinuz`, {
      settings: { 'upstream-allow': '10.0.0.0/8' },
      resolve,
    });
    expect(status.error?.code).toBe('policy');
    expect(status.error?.message).toContain(
      'resolved media.test to 127.0.0.1, which is refused by --upstream-allow (not in 10.0.0.0/8)',
    );
    expect(origin.connections).toBe(before);
  });

  it('a name listed by name may resolve anywhere the deny rules allow', async () => {
    const settings = { 'upstream-allow': '10.0.0.0/8,media.test' };
    expect((await fetchOnce(`http://media.test:${origin.port}/vmlinuz`, { settings, resolve })).state).toBe('ready');
  });

  it.each(TRANSPORTS)('via %s: a literal outside the list is a 400 naming path', async (transport) => {
    const h = await createHarness({ transport, settings: { 'upstream-allow': '10.0.0.0/8' } });
    try {
      const res = await fetchBootFile(h.request, { prefix: 'boot/t', path: `http://127.0.0.1:${origin.port}/vmlinuz` });
      expect(res.status).toBe(400);
      expect(await res.text()).toBe('path: address 127.0.0.1 is refused by --upstream-allow (not in 10.0.0.0/8)');
      const metadata = await fetchBootFile(h.request, { prefix: 'boot/t', path: 'http://0xa9.0xfe.0xa9.0xfe/' });
      expect(metadata.status).toBe(400);
      expect(await metadata.text()).toContain('path: address 169.254.169.254 is refused by the default rule');
      expect((await h.request('/api/v1/files/boot/t-vmlinuz')).status).toBe(404);
    } finally {
      await h.close();
    }
  });
});

describe('http_proxy, https_proxy, no_proxy', () => {
  let origin: Origin;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  beforeAll(async () => {
    origin = await startOrigin();
    proxy = await startProxy();
  });
  afterAll(async () => {
    await stop(origin.server);
    await stop(proxy.server);
  });

  it('sends http:// upstreams through http_proxy as absolute-URI requests', async () => {
    proxy.seen.length = 0;
    const url = `http://127.0.0.1:${origin.port}/vmlinuz`;
    const status = await fetchOnce(url, { env: { http_proxy: proxy.url } });
    expect(status.state, JSON.stringify(status.error)).toBe('ready');
    // The medium's checksum documents are asked for the same way (core/checksum-check.ts).
    const base = `http://127.0.0.1:${origin.port}`;
    expect(proxy.seen).toEqual([`GET ${url}`, `GET ${base}/SHA256SUMS`, `GET ${base}/MD5SUMS`]);
  });

  it('keeps the upstream timeouts through the proxy (undici builds proxy clients without them)', async () => {
    const status = await fetchOnce(`http://127.0.0.1:${origin.port}/stall/vmlinuz`, {
      env: { http_proxy: proxy.url },
      settings: { 'idle-timeout': 1 },
    });
    expect(status.error?.code).toBe('timeout');
  });

  it('reads HTTP_PROXY too, the lower-case name winning', async () => {
    proxy.seen.length = 0;
    const url = `http://127.0.0.1:${origin.port}/vmlinuz`;
    expect((await fetchOnce(url, { env: { HTTP_PROXY: proxy.url } })).state).toBe('ready');
    expect(withoutChecksumDocuments(proxy.seen)).toHaveLength(1);
    const wrong = 'http://127.0.0.1:9'; // nothing listens on the discard port
    expect((await fetchOnce(url, { env: { http_proxy: proxy.url, HTTP_PROXY: wrong } })).state).toBe('ready');
    expect(withoutChecksumDocuments(proxy.seen)).toHaveLength(2);
  });

  it('bypasses the proxy for no_proxy hosts', async () => {
    proxy.seen.length = 0;
    const before = origin.requests.length;
    const url = `http://127.0.0.1:${origin.port}/vmlinuz`;
    expect((await fetchOnce(url, { env: { http_proxy: proxy.url, no_proxy: 'mirror.example,127.0.0.1' } })).state).toBe(
      'ready',
    );
    expect(proxy.seen).toEqual([]);
    expect(withoutChecksumDocuments(origin.requests.slice(before))).toHaveLength(1);
  });

  it('uses https_proxy for https:// only, as curl does: http:// stays direct without http_proxy', async () => {
    proxy.seen.length = 0;
    const status = await fetchOnce(`http://127.0.0.1:${origin.port}/vmlinuz`, { env: { https_proxy: proxy.url } });
    expect(status.state).toBe('ready');
    expect(proxy.seen).toEqual([]);
  });

  it('still refuses a denied literal before anything reaches the proxy', async () => {
    proxy.seen.length = 0;
    let caught: unknown;
    try {
      await fetchOnce('http://[::ffff:169.254.169.254]/latest/', { env: { http_proxy: proxy.url } });
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ field: 'path', message: expect.stringContaining('169.254.0.0/16') as unknown });
    expect(proxy.seen).toEqual([]);
  });

  it('refuses a proxy that resolves to a denied address (the proxy passes the deny rules)', async () => {
    const status = await fetchOnce(`http://127.0.0.1:${origin.port}/vmlinuz`, {
      env: { http_proxy: 'http://proxy.test:3128' },
      resolve: fakeDns({ 'proxy.test': ['169.254.169.254'] }),
    });
    expect(status.error?.code).toBe('policy');
    expect(status.error?.message).toContain('resolved proxy.test to 169.254.169.254');
  });
});

describe('--upstream-ca-file', () => {
  let dir: string;
  let origin: Origin;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  let caFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pxecache-ca-'));
    const pki = makePrivateCa(dir);
    caFile = pki.caFile;
    origin = await startOrigin((h) => createHttpsServer(pki.server, h));
    proxy = await startProxy();
  });
  afterAll(async () => {
    await stop(origin.server);
    await stop(proxy.server);
    await rm(dir, { recursive: true, force: true });
  });

  it('fails an upstream signed by an unknown CA (code tls)', async () => {
    const status = await fetchOnce(`https://127.0.0.1:${origin.port}/vmlinuz`);
    expect(status.state).toBe('failed');
    expect(status.error?.code).toBe('tls');
  });

  it('verifies it with the CA file, verification staying on', async () => {
    const status = await fetchOnce(`https://127.0.0.1:${origin.port}/vmlinuz`, {
      settings: { 'upstream-ca-file': caFile },
    });
    expect(status.state, JSON.stringify(status.error)).toBe('ready');
    expect(status.size).toBe(BYTES.length);
  });

  it('verifies through an https_proxy tunnel with the same trust (and fails there without it)', async () => {
    proxy.seen.length = 0;
    const url = `https://127.0.0.1:${origin.port}/vmlinuz`;
    const env = { https_proxy: proxy.url };
    const ok = await fetchOnce(url, { env, settings: { 'upstream-ca-file': caFile } });
    expect(ok.state, JSON.stringify(ok.error)).toBe('ready');
    expect(proxy.seen).toEqual([`CONNECT 127.0.0.1:${origin.port}`]);
    const refused = await fetchOnce(url, { env });
    expect(refused.error?.code).toBe('tls');
  });

  it('refuses to start with a missing or certificate-less CA file, naming the option', async () => {
    const start = (file: string) => () =>
      createNodeFetcher(
        createFileStore({ root: dir }),
        { ...SETTINGS, 'upstream-ca-file': file },
        silentLogger,
        undefined,
        { env: {} },
      );
    expect(start(join(dir, 'missing.pem'))).toThrow(ConfigError);
    expect(start(join(dir, 'missing.pem'))).toThrow(/--upstream-ca-file: cannot read/);
    expect(start(join(dir, 'ext.cnf'))).toThrow(/--upstream-ca-file: .* holds no PEM certificate/);
  });
});
