/**
 * One route suite for every runtime (Node, Workers, Lambda): the same HTTP requests must get the same answers, but for
 * the differences DESIGN.md documents (RouteTarget `blob` and `ftp`). One target serves the whole suite, so each case
 * uses names of its own and reads the catalog relative to a cursor it took.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog, ConfigCatalog, FileStatus } from '../../src/core/records.js';
import { openApiDocument } from '../../src/http/openapi.js';
import { bytesOf, fetchBootFile, sha256 } from '../helpers/api.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { deferred, waitFor } from '../helpers/wait.js';
import { closedPort, ISO_UTC, readyStatus, reply, routeClient, unpublished, type RouteClient } from './client.js';
import type { RouteTarget } from './target.js';

const { version: VERSION } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};
const TEXT = /^text\/plain/;
const MAC = 'aa:bb:cc:dd:ee:0f';

export function describeRouteSuite(runtime: string, start: () => Promise<RouteTarget>): void {
  describe(`routes on ${runtime}`, () => {
    let target: RouteTarget;
    let up: Upstream;
    let c: RouteClient;
    let cases = 0;
    /** A prefix no other case uses: the target is shared. */
    const prefix = () => `boot/rs${++cases}`;

    beforeAll(async () => {
      up = await createUpstream();
      target = await start();
      c = routeClient(target, up);
    }, 60_000);
    afterAll(async () => {
      // Upstream first: closing it ends any held response, so the target has no download left to wait for.
      await up?.close();
      await target?.close();
    });

    it('answers the discovery routes Foreman calls', async () => {
      const get = async (path: string) => {
        const res = await c.open(path);
        expect(res.status, path).toBe(200);
        expect(res.headers.get('content-type'), path).toMatch(/^application\/json/);
        return res.json();
      };
      expect(await get('/features')).toEqual(['tftp']);
      expect(await get('/version')).toEqual({ version: VERSION, modules: { tftp: VERSION } });
      expect(await get('/v2/features')).toEqual({
        tftp: {
          http_enabled: expect.any(Boolean),
          https_enabled: expect.any(Boolean),
          settings: { tftp_servername: target.serverName },
          state: 'running',
          capabilities: [],
        },
      });
      expect(await get('/tftp/serverName')).toEqual({ serverName: target.serverName });
    });

    it('serves the API document without a token, as built from the schemas (docs/api.md)', async () => {
      const res = await c.open('/api/v1/openapi.json');
      expect(res.status).toBe(200);
      const doc = (await res.json()) as { openapi: string; info: { version: string }; paths: object };
      expect(doc).toEqual({ ...JSON.parse(JSON.stringify(openApiDocument(VERSION))), info: doc.info });
      expect(doc.openapi).toBe('3.1.0');
      expect(doc.info.version).toBe(VERSION);
    });

    it('fetch_boot_file: 200 with an empty body once the status exists, then ready with the served bytes', async () => {
      const p = prefix();
      const kernel = c.serve(`/${p}/images/vmlinuz`, bytesOf(`${p}-kernel`, 64 * 1024 + 17));
      await c.foreman(p, kernel.url);
      // DESIGN.md: the status record exists before the 200 is sent.
      const right = await c.status(`${p}-vmlinuz`);
      expect(right.code).toBe(200);
      expect(['fetching', 'ready']).toContain(right.body.state);

      const ready = await c.settled(`${p}-vmlinuz`, 'ready');
      expect(ready).toEqual(readyStatus(`${p}-vmlinuz`, kernel, 1));
      expect(ready.versions[0]?.fetchedAt).toBe(ready.fetchedAt);
    });

    it('respin: new bytes under a new ETag are a new version, generation grows, versions newest first', async () => {
      const p = prefix();
      const path = `/${p}/images/initrd.img`;
      const v1 = c.serve(path, bytesOf(`${p}-v1`, 9000));
      await c.foreman(p, v1.url);
      const first = await c.settled(`${p}-initrd.img`, 'ready', sha256(v1.bytes));

      const v2 = c.serve(path, bytesOf(`${p}-v2 respin`, 9500));
      await c.foreman(p, v2.url);
      const second = await c.settled(`${p}-initrd.img`, 'ready', sha256(v2.bytes));
      expect(second).toEqual(readyStatus(`${p}-initrd.img`, v2, 2, [v1]));
      expect(second.versions[1]).toEqual(first.versions[0]);
    });

    it.each<[string, (p: string, up: Upstream) => Record<string, string>, string]>([
      ['missing prefix', (p, u) => ({ path: u.url(`/${p}/vmlinuz`) }), 'prefix'],
      ['missing path', (p) => ({ prefix: p }), 'path'],
      ['an unknown scheme', (p) => ({ prefix: p, path: `gopher://127.0.0.1/${p}/vmlinuz` }), 'path'],
      ['a file: URL', (p) => ({ prefix: p, path: 'file:///etc/vmlinuz' }), 'path'],
      ['a ".." basename', (p, u) => ({ prefix: p, path: u.url(`/${p}/..`) }), 'path'],
      ['a "%2e%2e" basename', (p, u) => ({ prefix: p, path: u.url(`/${p}/%2e%2e`) }), 'path'],
      ['prefix "../x"', (p, u) => ({ prefix: '../x', path: u.url(`/${p}/vmlinuz`) }), 'prefix'],
    ])('fetch_boot_file with %s: 400 plain text naming the field, nothing recorded', async (_, params, field) => {
      const p = prefix();
      const res = await fetchBootFile(c.open, params(p, up));
      const body = await res.text();
      expect(res.status, body).toBe(400);
      expect(res.headers.get('content-type')).toMatch(TEXT);
      expect(body).toMatch(new RegExp(`^${field}: \\S`));
      expect(await c.status(`${p}-vmlinuz`)).toEqual({
        code: 404,
        body: { error: { code: 'not-found', message: `no file named "${p}-vmlinuz"` } },
      });
      expect(up.requests.filter((r) => r.path.startsWith(`/${p}/`))).toEqual([]);
    });

    it('ftp:// media: accepted where the runtime downloads them, else 400 saying so; nfs:// a recorded no-op', async () => {
      const p = prefix();
      const url = `ftp://127.0.0.1:${await closedPort()}/${p}/vmlinuz`;
      const res = await fetchBootFile(c.open, { prefix: p, path: url });
      const body = await res.text();
      if (target.ftp) {
        expect({ status: res.status, body }).toEqual({ status: 200, body: '' });
        // Nothing listens there: the fetch fails, and says so in the status.
        expect(await c.settled(`${p}-vmlinuz`, 'failed')).toEqual({
          ...unpublished(`${p}-vmlinuz`, url, 'failed', null),
          error: { code: 'connect', message: expect.stringContaining('ECONNREFUSED') },
        });
      } else {
        expect(res.status, body).toBe(400);
        expect(body).toMatch(/^path: .*ftp/);
        expect((await c.status(`${p}-vmlinuz`)).code).toBe(404);
      }

      const nfs = `nfs://server/export/${p}/initrd.img`;
      await c.foreman(p, nfs);
      expect(await c.status(`${p}-initrd.img`)).toEqual({
        code: 200,
        body: { ...unpublished(`${p}-initrd.img`, nfs, 'nfs-noop', ISO_UTC), error: null },
      });
    });

    it('POST /api/v1/fetch?wait: 200 with the ready status; an upstream 404 is 502 with the failed status', async () => {
      const p = prefix();
      const kernel = c.serve(`/${p}/vmlinuz`, bytesOf(`${p}-kernel`, 6000));
      const json = (body: object): RequestInit => ({
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
      });
      const ok = await c.json<FileStatus>('/api/v1/fetch?wait=10', json({ name: `${p}/kernel`, url: kernel.url }));
      expect(ok.res.status).toBe(200);
      expect(ok.body).toEqual(readyStatus(`${p}/kernel`, kernel, 1));

      const missing = c.serve(`/${p}/missing`, Buffer.from('gone'), { status: 404 }).url;
      const failed = await c.json<FileStatus>('/api/v1/fetch?wait=10', json({ name: `${p}/missing`, url: missing }));
      expect(failed.res.status).toBe(502);
      expect(failed.body).toEqual({
        ...unpublished(`${p}/missing`, missing, 'failed', null),
        error: { code: 'upstream-status', message: expect.stringContaining('404') },
      });
    });

    it('catalog: ETag, 304 on If-None-Match, ?since=<cursor> answers only what was published after it', async () => {
      const before = await c.json<Catalog & { complete: boolean }>('/api/v1/files');
      expect(before.res.status).toBe(200);
      expect(before.body.complete).toBe(true);
      const etag = before.res.headers.get('etag');
      expect(etag).toBe(`"${before.body.cursor}"`);
      expect((await c.api('/api/v1/files', { headers: { 'if-none-match': etag ?? '' } })).status).toBe(304);

      const p = prefix();
      const kernel = c.serve(`/${p}/vmlinuz`, bytesOf(`${p}-kernel`, 1234));
      await c.foreman(p, kernel.url);
      await c.settled(`${p}-vmlinuz`, 'ready');
      const after = await c.api('/api/v1/files', { headers: { 'if-none-match': etag ?? '' } });
      expect(after.status).toBe(200);
      expect(after.headers.get('etag')).not.toBe(etag);

      const delta = await c.json<Catalog & { complete: boolean }>(`/api/v1/files?since=${before.body.cursor}`);
      expect(delta.res.status).toBe(200);
      expect(delta.res.headers.get('etag')).toBe(`"${delta.body.cursor}"`);
      expect(delta.body).toMatchObject({ complete: false });
      expect(delta.body.entries).toEqual([
        expect.objectContaining({ name: `${p}-vmlinuz`, generation: 1, sha256: sha256(kernel.bytes), size: 1234 }),
      ]);
      expect((await c.api(`/api/v1/files?since=${delta.body.cursor}`)).status).toBe(304);
    });

    it('catalog long-poll (?since&wait) answers as soon as something is published during the wait', async () => {
      const { body: now } = await c.json<Catalog>('/api/v1/files');
      const p = prefix();
      const gate = deferred();
      const path = `/${p}/vmlinuz`;
      const kernel = c.serve(path, bytesOf(`${p}-kernel`, 4321), { gate: gate.promise });
      let settled = false;
      const poll = c.api(`/api/v1/files?since=${now.cursor}&wait=20`).finally(() => (settled = true));
      await c.foreman(p, kernel.url);
      await waitFor('upstream to hold the download', async () => ({ done: up.count(path) === 1, value: null }));
      // Nothing can be published while upstream holds the headers: the poll must still be waiting.
      expect(settled).toBe(false);
      gate.resolve();

      const res = await poll;
      expect(res.status).toBe(200);
      const body = (await res.json()) as Catalog;
      expect(body.entries.map((e) => [e.name, e.sha256])).toEqual([[`${p}-vmlinuz`, sha256(kernel.bytes)]]);
    });

    it('blobs: the bytes of a version (or a redirect to them), Range, ETag, 404 for an unknown sha256', async () => {
      const p = prefix();
      const kernel = c.serve(`/${p}/vmlinuz`, bytesOf(`${p}-blob`, 5000));
      await c.foreman(p, kernel.url);
      const sha = sha256(kernel.bytes);
      await c.settled(`${p}-vmlinuz`, 'ready');
      const blob = (headers: Record<string, string> = {}) =>
        c.api(`/api/v1/blobs/${sha}`, { headers, redirect: 'manual' });
      // Lambda: a 302 to a presigned URL, which then answers the same (DESIGN.md "Native contract").
      const follow = async (res: Response, headers: Record<string, string> = {}) => {
        if (target.blob === 'bytes') return res;
        expect(res.status).toBe(302);
        return fetch(res.headers.get('location') ?? '', { headers });
      };

      const whole = await follow(await blob());
      expect(whole.status).toBe(200);
      expect(Buffer.from(await whole.arrayBuffer()).equals(kernel.bytes)).toBe(true);
      const range = { range: 'bytes=10-19' };
      const part = await follow(await blob(range), range);
      expect(part.status).toBe(206);
      expect(part.headers.get('content-range')).toBe('bytes 10-19/5000');
      expect(Buffer.from(await part.arrayBuffer()).equals(kernel.bytes.subarray(10, 20))).toBe(true);
      if (target.blob === 'bytes') {
        expect(whole.headers.get('etag')).toBe(`"${sha}"`);
        expect(whole.headers.get('content-type')).toBe('application/octet-stream');
        expect(whole.headers.get('content-length')).toBe('5000');
        expect((await blob({ 'if-none-match': `"${sha}"` })).status).toBe(304);
      }

      const unknown = await c.json<{ error: { code: string } }>(`/api/v1/blobs/${'0'.repeat(64)}`);
      expect(unknown.res.status).toBe(404);
      expect(unknown.body.error.code).toBe('not-found');
    });

    it('pxeconfig routes: create, read back, delete, create_default; a bad MAC or no config is refused', async () => {
      const ok = { status: 200, body: '' };
      const config = 'DEFAULT linux\nLABEL linux\n  KERNEL boot/rs-vmlinuz\n';

      expect(await reply(await c.proxy('POST', `/tftp/PXELinux/${MAC}`, { pxeconfig: config }))).toEqual(ok);
      const read = await c.proxy('GET', `/tftp/PXELinux/${MAC}`);
      expect(read.headers.get('content-type')).toMatch(TEXT);
      expect(await reply(read)).toEqual({ status: 200, body: config });
      expect(await reply(await c.proxy('DELETE', `/tftp/PXELinux/${MAC}`))).toEqual(ok);
      expect(await reply(await c.proxy('GET', `/tftp/PXELinux/${MAC}`))).toEqual({
        status: 404,
        body: 'TFTP: Failed to retrieve pxe config file: File pxelinux.cfg/01-aa-bb-cc-dd-ee-0f not found',
      });

      const menu = 'set default=0\nmenuentry "local" { exit }\n';
      expect(await reply(await c.proxy('POST', '/tftp/PXEGrub2/create_default', { menu }))).toEqual(ok);
      const { body: configs } = await c.json<ConfigCatalog>('/api/v1/sites/default/configs');
      expect(configs.entries.map((e) => [e.path, e.deleted, e.sha256])).toEqual([
        ['grub2/grub.cfg', false, sha256(menu)],
        ['pxelinux.cfg/01-aa-bb-cc-dd-ee-0f', true, expect.any(String)],
      ]);

      // smart-proxy (tftp_api.rb) answers a bad MAC with 403, checked before anything else; a missing config is 400.
      expect(await reply(await c.proxy('POST', '/tftp/PXELinux/aa:bb:cc:00:11:zz', { pxeconfig: config }))).toEqual({
        status: 403,
        body: 'Invalid MAC address: aa:bb:cc:00:11:zz',
      });
      expect(await reply(await c.proxy('POST', `/tftp/PXELinux/${MAC}`, { other: 'x' }))).toEqual({
        status: 400,
        body: 'TFTP: Failed to create pxe config file: Invalid parameters received',
      });
      expect((await c.proxy('GET', `/tftp/PXELinux/${MAC}`)).status).toBe(404);
    });

    // Last: a few refused requests, well under the per-address failure limit (10 a minute), which would 429 the rest.
    it('native API without a token (or with a wrong one): 401 with a Bearer challenge, and nothing fetched', async () => {
      const p = prefix();
      const kernel = c.serve(`/${p}/vmlinuz`, bytesOf(`${p}-kernel`, 100));
      const refused = [
        await c.open('/api/v1/files'),
        await c.open(`/api/v1/blobs/${sha256('x')}`),
        await c.open('/api/v1/fetch?wait=5', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: `${p}/kernel`, url: kernel.url }),
        }),
        await c.open('/api/v1/files', { headers: { authorization: `Bearer ${target.token}-wrong` } }),
      ];
      for (const res of refused) {
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="pxecache"/);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
      }
      expect(up.count(`/${p}/vmlinuz`)).toBe(0);
      expect((await c.status(`${p}/kernel`)).code).toBe(404);
    });
  });
}
