/**
 * Issue "Catalog that scales": with 10,000 published names on the real file store, an idle poll is one cheap
 * request (a handful of store operations, whatever the number of names), a change to one name costs reads of that
 * name only, and a long-poll returns a change another instance made to the same store. The names are published
 * through the core `publish()` with small fake entries (no upstream downloads: the catalog is what is measured).
 */
import { serve } from '@hono/node-server';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, readlink, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpSource } from '../../src/agent/http-source.js';
import { createStoreSource } from '../../src/agent/store-source.js';
import { createAgent, type Agent } from '../../src/agent/sync.js';
import { putSmallBlob } from '../../src/core/blobs.js';
import { publish } from '../../src/core/pointers.js';
import { silentLogger } from '../../src/core/ports.js';
import { versionOf, type Changes, type VersionEntry } from '../../src/core/records.js';
import { parseSites } from '../../src/core/sites.js';
import { createApp } from '../../src/http/app.js';
import { createNodeAppDeps } from '../../src/runtime/node/app-deps.js';
import { createFileStore } from '../../src/storage/file-store.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { memoryLogger, nodeHasher, tempRoot, type TempRoot } from '../helpers/agent-fixtures.js';
import { createHarness, TRANSPORTS, type Harness, TEST_SETTINGS } from '../helpers/app-harness.js';
import { countingStore, type CountingStore } from '../helpers/counting-store.js';
import { waitFor } from '../helpers/wait.js';

const N = 10_000;
const MAC = 'aa:bb:cc:dd:ee:ff';
const name = (i: number) => `boot/scale-${String(i).padStart(5, '0')}-vmlinuz`;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
let startedAt = 0;

function fakeEntry(content: string): VersionEntry {
  const sha256 = sha(content);
  return {
    version: versionOf(sha256),
    sha256,
    size: content.length,
    url: 'http://mirror.example/os/vmlinuz',
    fetchedAt: new Date(0).toISOString(),
    basename: 'vmlinuz',
    key: `data/${sha256}`,
  };
}

function publishEntry(store: ObjectStore, n: string, entry: VersionEntry) {
  return publish(store, { name: n, entry, etag: null, lastModified: null, startedAt: ++startedAt, keep: 3 });
}

async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

const SETTINGS = TEST_SETTINGS;

describe(`catalog with ${N} names on the file store`, () => {
  let storeDir: string;
  /** Store operations per request, for the report at the end. */
  const measured: Record<string, number> = {};

  beforeAll(async () => {
    storeDir = await mkdtemp(join(tmpdir(), 'pxecache-scale-'));
    const store = createFileStore({ root: storeDir });
    const names = Array.from({ length: N }, (_, i) => name(i));
    const t0 = Date.now();
    await forEachLimit(names, 64, (n) => publishEntry(store, n, fakeEntry(`${n} v1`)));
    measured['publish all names (ms, not store ops)'] = Date.now() - t0;
  }, 300_000);

  afterAll(async () => {
    console.log(`catalog-scale: store operations per request with ${N} names: ${JSON.stringify(measured)}`);
    await rm(storeDir, { recursive: true, force: true });
  });

  describe.each(TRANSPORTS)('over %s', (transport) => {
    let h: Harness;
    let counted: CountingStore;
    /** The last cursor this client knows (from the snapshot in (a)). */
    let known = '';

    beforeAll(async () => {
      h = await createHarness({
        transport,
        storeDir,
        wrapStore: (s) => (counted = countingStore(s)).store,
      });
    });
    afterAll(() => h.close());

    async function changes(query: string, init?: RequestInit) {
      const res = await h.request(`/api/v1/changes?site=default${query}`, init);
      return { res, body: res.status === 200 ? ((await res.json()) as Changes) : null };
    }

    /** Catches up from `known` (a delta or a 304, never the 10,000 names again): the cursor is the ETag. */
    async function current(): Promise<string> {
      const { res } = await changes(`&since=${known}`);
      expect([200, 304]).toContain(res.status);
      known = (res.headers.get('etag') ?? '').replace(/"/g, '');
      return known;
    }

    it('(a) an idle poll costs a few store operations, however many names there are', async () => {
      const { res, body } = await changes('');
      expect(res.status).toBe(200);
      expect(body?.complete).toBe(true);
      expect(body?.files.length).toBeGreaterThanOrEqual(N);
      const cursor = body?.cursor ?? '';
      expect(res.headers.get('etag')).toBe(`"${cursor}"`);
      known = cursor;

      counted.reset();
      const idle = await changes(`&since=${cursor}`);
      expect(idle.res.status).toBe(304);
      measured[`${transport}: idle /changes?since`] = counted.count();
      expect(counted.count()).toBeLessThanOrEqual(5);
      expect(counted.count('list', 'put', 'delete')).toBe(0);

      // The catalog humans and older agents read: the ETag is the cursor, compared before any name is read.
      const files = await h.request('/api/v1/files');
      expect(files.status).toBe(200);
      const etag = files.headers.get('etag') ?? '';
      counted.reset();
      expect((await h.request('/api/v1/files', { headers: { 'if-none-match': etag } })).status).toBe(304);
      measured[`${transport}: If-None-Match /files`] = counted.count();
      expect(counted.count()).toBeLessThanOrEqual(5);

      const configs = await h.request('/api/v1/sites/default/configs');
      counted.reset();
      const again = { headers: { 'if-none-match': configs.headers.get('etag') ?? '' } };
      expect((await h.request('/api/v1/sites/default/configs', again)).status).toBe(304);
      expect(counted.count()).toBeLessThanOrEqual(5);
    });

    it('(b) one more version of one name: the delta holds exactly that name, read with O(1) operations', async () => {
      const cursor = await current();
      const target = name(transport === 'socket' ? 4242 : 77);
      // Another process publishes: a store object of its own on the same directory.
      await publishEntry(createFileStore({ root: storeDir }), target, fakeEntry(`${target} v2 ${transport}`));

      counted.reset();
      const { res, body } = await changes(`&since=${cursor}`);
      expect(res.status).toBe(200);
      expect(body).toMatchObject({ complete: false, site: 'default', configs: [] });
      expect(body?.files.map((f) => [f.name, f.generation])).toEqual([[target, 2]]);
      measured[`${transport}: one-name delta`] = counted.count();
      // Head hint + probe, one LIST of the log, the event, the name's head + probe: independent of N.
      expect(counted.count('list')).toBe(1);
      expect(counted.count()).toBeLessThanOrEqual(10);
      expect(counted.count('put', 'delete')).toBe(0);
      expect(res.headers.get('etag')).toBe(`"${body?.cursor}"`);
      expect(Number(body?.cursor)).toBeGreaterThan(Number(cursor));
    });

    it('(c) a pending long-poll returns a change another instance makes on the same store', async () => {
      const other = await createHarness({ transport, storeDir });
      try {
        const cursor = await current();
        const pending = changes(`&since=${cursor}&wait=10`);
        // The waiting request has read the feed before the write (no timing asserted: a late start still sees it).
        await new Promise((r) => setTimeout(r, 100));
        const write = await other.request(`/tftp/PXELinux/${MAC}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `pxeconfig=${encodeURIComponent(`DEFAULT ${transport}`)}`,
        });
        expect(write.status).toBe(200);
        const { res, body } = await pending;
        expect(res.status).toBe(200);
        expect(body).toMatchObject({ complete: false, files: [] });
        expect(body?.configs.map((c) => [c.path, c.deleted])).toEqual([['pxelinux.cfg/01-aa-bb-cc-dd-ee-ff', false]]);
      } finally {
        await other.close();
      }
    });
  });
});

describe('agents follow the change feed', () => {
  const COUNT = 20;
  let dir: string;
  let roots: TempRoot[] = [];

  afterAll(async () => {
    await Promise.all(roots.map((r) => rm(r.base, { recursive: true, force: true })));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Publishes real bytes for `n` (the agents download and verify them). */
  async function publishBytes(store: ObjectStore, n: string, content: string) {
    const bytes = new TextEncoder().encode(content);
    const sha256 = sha(content);
    const key = await putSmallBlob(store, bytes, sha256, randomUUID);
    const entry: VersionEntry = { ...fakeEntry(content), key };
    const result = await publishEntry(store, n, entry);
    expect(result.kind).toBe('published');
    return entry.version;
  }

  async function links(root: string): Promise<Map<string, { target: string; ino: number }>> {
    const out = new Map<string, { target: string; ino: number }>();
    for (let i = 0; i < COUNT; i++) {
      const link = join(root, name(i));
      out.set(name(i), { target: await readlink(link), ino: (await stat(link)).ino });
    }
    return out;
  }

  it('a store-source agent and an http-source agent each apply a delta: exactly one link moves', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pxecache-feed-'));
    const store = createFileStore({ root: dir });
    for (let i = 0; i < COUNT; i++) await publishBytes(store, name(i), `${name(i)} v1`);

    const { deps, close } = createNodeAppDeps({
      store: createFileStore({ root: dir }),
      settings: SETTINGS,
      logger: silentLogger,
      sites: parseSites('', ''),
      catalogPollMs: 100,
    });
    const server = serve({ fetch: createApp(deps).fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    roots = [await tempRoot(), await tempRoot()];
    const sources = [
      createStoreSource({ store: createFileStore({ root: dir }), description: 'file store', pollMs: 100 }),
      createHttpSource({ baseUrl: base }),
    ];
    const agents: Agent[] = sources.map((source, i) =>
      createAgent({
        source,
        root: (roots[i] as TempRoot).root,
        stateDir: (roots[i] as TempRoot).stateDir,
        hasher: nodeHasher,
        logger: memoryLogger(),
      }),
    );
    const stop = new AbortController();
    try {
      for (const agent of agents) {
        await agent.start();
        const first = await agent.syncOnce();
        expect(first).toMatchObject({ ok: true, full: true });
        expect(first.names.filter((n) => n.outcome === 'updated')).toHaveLength(COUNT);
      }
      const before = await Promise.all(roots.map((r) => links(r.root)));

      // One pass each: the delta names one name, and only its link moves.
      const v2 = await publishBytes(createFileStore({ root: dir }), name(7), `${name(7)} v2`);
      for (const [i, agent] of agents.entries()) {
        const report = await agent.syncOnce();
        expect(report).toMatchObject({ ok: true, full: false, notModified: false });
        expect(report.names).toEqual([{ name: name(7), outcome: 'updated', version: v2 }]);
        const after = await links((roots[i] as TempRoot).root);
        for (const [n, link] of after) {
          if (n === name(7)) expect(link.target).toBe(`scale-00007-vmlinuz-orig/${v2}/vmlinuz`);
          else expect(link).toEqual(before[i]?.get(n));
        }
        expect((await agent.syncOnce()).notModified).toBe(true);
      }

      // Long-polling agents: a publication reaches both roots without anyone polling by hand.
      const running = agents.map((agent) => agent.run({ intervalMs: 50, waitSeconds: 10, signal: stop.signal }));
      const v3 = await publishBytes(createFileStore({ root: dir }), name(3), `${name(3)} v3`);
      for (const r of roots) {
        await waitFor('the new version of one name at the edge', async () => {
          const target = await readlink(join(r.root, name(3)));
          return { done: target.includes(v3), value: target };
        });
      }
      stop.abort();
      await Promise.all(running);
    } finally {
      stop.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await closed;
      await close();
    }
  });
});
