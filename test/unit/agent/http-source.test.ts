import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ensureVersionFile } from '../../../src/agent/activate.js';
import { createHttpSource } from '../../../src/agent/http-source.js';
import { UnknownSiteError } from '../../../src/agent/source.js';
import { createAgent } from '../../../src/agent/sync.js';
import { readAll } from '../../../src/storage/object-store.js';
import { configFor, entryFor, memoryLogger, nodeHasher, tempRoot } from '../../helpers/agent-fixtures.js';

const CONTENT = '0123456789'.repeat(1000);
const entry = entryFor('boot/x-vmlinuz', CONTENT);
const CURSOR = '7';
const TOKEN = 'secret-token';
const CFG_PATH = 'grub2/grub.cfg-aa:bb:cc:dd:ee:ff';
// Same bytes as the boot file: configs are content-addressed blobs too, served by the same blob route.
const config = configFor(CFG_PATH, CONTENT);
const gone = configFor('pxelinux.cfg/01-aa-bb-cc-dd-ee-ff', 'old', true);
const snapshot = () => ({ cursor: CURSOR, complete: true, site: 'default', files: [entry], configs: [config, gone] });
/** What the change feed answers for site "default" without a cursor (replaced by tests that need a malformed body). */
let changesBody: unknown = snapshot();

interface Seen {
  url: string;
  headers: IncomingMessage['headers'];
}
let seen: Seen[] = [];
/** Requests to the blob that get cut after this many bytes (once). */
let cutAfter: number | null = null;
let api: Server;
let s3: Server;
let base: string;
let s3Base: string;

function blob(req: IncomingMessage, res: ServerResponse, bytes: Buffer): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = m ? Number(m[1]) : 0;
  const body = bytes.subarray(start);
  res.writeHead(m ? 206 : 200, {
    'content-length': body.length,
    ...(m ? { 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}),
  });
  if (cutAfter !== null) {
    const n = cutAfter;
    cutAfter = null;
    res.write(body.subarray(0, n), () => res.destroy());
    return;
  }
  res.end(body);
}

beforeAll(async () => {
  const bytes = Buffer.from(CONTENT);
  s3 = createServer((req, res) => {
    seen.push({ url: `s3:${req.url}`, headers: req.headers });
    blob(req, res, bytes);
  });
  api = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return void res.writeHead(401).end('bad token');
    if (url.pathname === '/pfx/api/v1/changes') {
      const site = url.searchParams.get('site');
      const since = url.searchParams.get('since');
      if (site !== null && site !== 'default') {
        // The fetcher's answer for a site missing from its --sites (src/http/api-v1.ts).
        res.writeHead(404, { 'content-type': 'application/json' });
        const error = { code: 'unknown-site', message: `no site "${site}" (configured: default)` };
        return void res.end(JSON.stringify({ error }));
      }
      if (since === CURSOR) return void res.writeHead(304, { etag: `"${CURSOR}"` }).end();
      const body =
        since === null
          ? changesBody
          : { cursor: CURSOR, complete: false, site, files: [entry], configs: site === null ? [] : [config] };
      res.writeHead(200, { 'content-type': 'application/json', etag: `"${CURSOR}"` });
      return void res.end(JSON.stringify(body));
    }
    if (url.pathname === `/pfx/api/v1/blobs/${entry.sha256}`) return blob(req, res, bytes);
    if (url.pathname === `/pfx/api/v1/blobs/${'f'.repeat(64)}`) {
      return void res.writeHead(302, { location: `${s3Base}/bucket/${entry.sha256}?X-Amz-Signature=abc` }).end();
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no such blob"}');
  });
  await Promise.all([api, s3].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
  base = `http://127.0.0.1:${(api.address() as AddressInfo).port}/pfx`;
  s3Base = `http://127.0.0.1:${(s3.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await Promise.all([api, s3].map((s) => new Promise((r) => s.close(r))));
});
beforeEach(() => {
  seen = [];
  cutAfter = null;
  changesBody = snapshot();
});

describe('http source', () => {
  const source = () => createHttpSource({ baseUrl: base, token: TOKEN });

  it('reads a snapshot, then a delta after its cursor, then 304 as not-modified; long-poll passes ?wait=', async () => {
    expect(await source().changes('default', null)).toEqual(snapshot());
    expect(await source().changes('default', '5')).toEqual({
      cursor: CURSOR,
      complete: false,
      site: 'default',
      files: [entry],
      configs: [config],
    });
    expect(await source().changes('default', CURSOR, 5)).toBe('not-modified');
    expect(await source().changes(null, '5')).toMatchObject({ site: null, files: [entry], configs: [] });
    expect(seen.map((s) => s.url)).toEqual([
      '/pfx/api/v1/changes?site=default',
      '/pfx/api/v1/changes?site=default&since=5',
      `/pfx/api/v1/changes?site=default&since=${CURSOR}&wait=5`,
      '/pfx/api/v1/changes?since=5',
    ]);
    expect(seen[0]?.headers['accept-encoding']).toBe('identity');
    expect(seen[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('reads a blob whole, and from an offset with Range (206)', async () => {
    const whole = await readAll(await source().openBlob(entry, 0));
    expect(Buffer.from(whole).toString()).toBe(CONTENT);
    const tail = await readAll(await source().openBlob(entry, 9990));
    expect(Buffer.from(tail).toString()).toBe(CONTENT.slice(9990));
    expect(seen[0]?.headers.range).toBeUndefined();
    expect(seen[1]?.headers.range).toBe('bytes=9990-');
  });

  it('names the URL and status on errors', async () => {
    const bad = createHttpSource({ baseUrl: base, token: 'wrong' });
    await expect(bad.changes(null, null)).rejects.toThrow(`[source:http] GET ${base}/api/v1/changes: 401 bad token`);
    const missing = { ...entry, sha256: 'e'.repeat(64) };
    await expect(source().openBlob(missing, 0)).rejects.toThrow(/blobs\/e{64}: 404 \{"error":"no such blob"\}/);
    await expect(createHttpSource({ baseUrl: 'http://127.0.0.1:1' }).changes(null, null)).rejects.toThrow(
      /\[source:http\] GET http:\/\/127\.0\.0\.1:1\/api\/v1\/changes: .*ECONNREFUSED/,
    );
  });

  it('follows a redirect to a presigned URL without sending the bearer token there', async () => {
    const body = await readAll(await source().openBlob({ ...entry, sha256: 'f'.repeat(64) }, 0));
    expect(body.byteLength).toBe(CONTENT.length);
    const hop = seen.find((s) => s.url.startsWith('s3:'));
    expect(hop?.url).toBe(`s3:/bucket/${entry.sha256}?X-Amz-Signature=abc`);
    expect(hop?.headers.authorization).toBeUndefined();
  });

  it('lets the agent resume a cut transfer with Range and verify it', async () => {
    const t = await tempRoot();
    try {
      cutAfter = 4096;
      const r = await ensureVersionFile({
        root: t.root,
        entry,
        source: source(),
        hasher: nodeHasher,
        resumeDelayMs: 0,
      });
      expect(await readFile(r.paths.file, 'utf8')).toBe(CONTENT);
      const ranges = seen.map((s) => s.headers.range);
      expect(ranges[0]).toBeUndefined();
      expect(ranges[1]).toMatch(/^bytes=[1-9]\d*-$/);
    } finally {
      await rm(t.base, { recursive: true, force: true });
    }
  });
});

describe('http source: site configs', () => {
  const source = () => createHttpSource({ baseUrl: base, token: TOKEN });

  it('names the site when the fetcher does not know it (404 unknown-site)', async () => {
    const err = await source()
      .changes('east', null)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownSiteError);
    expect((err as Error).message).toContain(
      `[source:http] GET ${base}/api/v1/changes: site "east" is unknown to the fetcher`,
    );
  });

  it('refuses a malformed change feed', async () => {
    changesBody = { ...snapshot(), configs: [{ ...config, deleted: 'no' }] };
    await expect(source().changes('default', null)).rejects.toThrow(/changes: configs\[0\] bad deleted/);
    changesBody = { ...snapshot(), files: [{ ...entry, size: '1' }] };
    await expect(source().changes('default', null)).rejects.toThrow(/changes: files\[0\] bad size/);
    changesBody = { ...snapshot(), site: 'west' };
    await expect(source().changes('default', null)).rejects.toThrow(/answered for site "west"/);
    changesBody = { ...snapshot(), cursor: undefined };
    await expect(source().changes('default', null)).rejects.toThrow(/no "cursor" string/);
  });

  it("lets an agent write the site's configs through the blob route", async () => {
    const t = await tempRoot();
    try {
      const agent = createAgent({
        source: source(),
        root: t.root,
        stateDir: t.stateDir,
        hasher: nodeHasher,
        logger: memoryLogger(),
      });
      await agent.start();
      const r = await agent.syncOnce();
      expect(r.configs).toMatchObject({ ok: true, written: [CFG_PATH], deleted: [] });
      expect(await readFile(join(t.root, CFG_PATH), 'utf8')).toBe(CONTENT);
      expect(seen.some((s) => s.url === `/pfx/api/v1/blobs/${config.sha256}`)).toBe(true);
    } finally {
      await rm(t.base, { recursive: true, force: true });
    }
  });
});
