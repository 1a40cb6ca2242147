import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { indexBlob } from '../../../src/core/blobs.js';
import { collectReferences } from '../../../src/core/gc-references.js';
import { keys } from '../../../src/core/object-keys.js';
import { latestPointer, publish } from '../../../src/core/pointers.js';
import type { ConfigRecord, PointerRecord, StatusRecord, VersionEntry } from '../../../src/core/records.js';
import { versionOf } from '../../../src/core/records.js';
import { collectGarbage } from '../../../src/core/store-gc.js';
import { createMemoryStore } from '../../../src/storage/memory-store.js';
import { getJson, listAll, putJson, type ObjectStore } from '../../../src/storage/object-store.js';

const HOUR = 3600_000;
const sha = (content: string) => createHash('sha256').update(content).digest('hex');
let ids = 0;
let started = 0;

/** What the fetch job does with bytes: a fresh data object, then the create-only index. */
async function ingest(store: ObjectStore, content: string): Promise<VersionEntry> {
  const sha256 = sha(content);
  const key = await indexBlob(store, sha256, content.length, await putData(store, content));
  const at = new Date(0).toISOString();
  return {
    version: versionOf(sha256),
    sha256,
    size: content.length,
    url: 'http://m/f',
    fetchedAt: at,
    basename: 'f',
    key,
  };
}

async function putData(store: ObjectStore, content: string): Promise<string> {
  const key = keys.data(`id-${++ids}`);
  await store.put(key, content);
  return key;
}

async function respin(store: ObjectStore, name: string, content: string, keep = 2): Promise<VersionEntry> {
  const entry = await ingest(store, content);
  await publish(store, { name, entry, etag: null, lastModified: null, startedAt: ++started, keep });
  return entry;
}

async function stored(store: ObjectStore): Promise<string[]> {
  const out: string[] = [];
  for await (const key of listAll(store, '')) if (key.startsWith('blobs/') || key.startsWith('data/')) out.push(key);
  return out.sort();
}

const at = (ms: number) => ({ now: () => ms });

describe('store GC: the reference walk', () => {
  it('names the kept history, the generation before, a pin, a held version, a resume and live configs only', async () => {
    const store = createMemoryStore();
    const v1 = await respin(store, 'boot/a', 'a1');
    const v2 = await respin(store, 'boot/a', 'a2');
    const v3 = await respin(store, 'boot/a', 'a3');
    // A pointer record whose history leaves out the generation before it (a writer we do not control), pinned.
    const latest = (await latestPointer(store, 'boot/a')) as PointerRecord;
    const pinned: PointerRecord = {
      ...latest,
      ...v1,
      generation: latest.generation + 1,
      versions: [v1],
      pinned: { version: v1.version, at: 'x', reason: 'rollback' },
    };
    await putJson(store, keys.pointer('boot/a', pinned.generation), pinned);
    const held = await ingest(store, 'a4-held');
    const status = { name: 'boot/a', held: { ...held, etag: null, lastModified: null } } as unknown as StatusRecord;
    await putJson(store, keys.status('boot/a'), status);
    await putJson(store, keys.resume('boot/b'), { key: 'data/in-flight', uploadId: 'u' });
    const cfg = await ingest(store, 'menu');
    const gone = await ingest(store, 'deleted menu');
    const config = (path: string, e: VersionEntry, deleted: boolean): ConfigRecord => ({
      site: 'east',
      path,
      deleted,
      sha256: e.sha256,
      size: e.size,
      key: e.key,
      updatedAt: 'x',
      variant: 'PXELinux',
      mac: null,
      params: {},
    });
    await putJson(store, keys.config('east', 'pxelinux.cfg/default'), config('pxelinux.cfg/default', cfg, false));
    await putJson(store, keys.config('east', 'pxelinux.cfg/01-aa'), config('pxelinux.cfg/01-aa', gone, true));

    const refs = await collectReferences(store);
    expect([...refs.sha256s].sort()).toEqual([v1.sha256, v3.sha256, held.sha256, cfg.sha256].sort());
    expect(refs.pinnedVersions).toEqual(new Set([v1.version]));
    expect(refs.dataKeys).toContain('data/in-flight');
    expect(refs.dataKeys).not.toContain(gone.key);
    expect(refs.dataKeys).not.toContain(v2.key);
    expect(refs.names).toBe(2);
    expect(refs.configs).toBe(1);
  });

  it('finds a name whose head hint was never written (its first publisher stopped before it)', async () => {
    const store = createMemoryStore();
    const v = await respin(store, 'boot/x/deep', 'x1');
    await store.delete(keys.head('boot/x/deep'));
    expect((await collectReferences(store)).sha256s).toEqual(new Set([v.sha256]));
  });
});

describe('store GC: collectGarbage', () => {
  const run = (store: ObjectStore, now: number, graceMs = 24 * HOUR, dryRun = false) =>
    collectGarbage(store, { graceMs, dryRun, clock: at(now) });

  /** boot/k respun k1..k4 (keeping 2: k4, k3); k1 is also boot/other's: only k2 is garbage. */
  async function history(store: ObjectStore): Promise<VersionEntry> {
    await respin(store, 'boot/k', 'k1');
    const dropped = await respin(store, 'boot/k', 'k2');
    await respin(store, 'boot/k', 'k3');
    await respin(store, 'boot/other', 'k1');
    await respin(store, 'boot/k', 'k4');
    return dropped;
  }

  it('marks first, deletes the index after the grace, then the data after the grace again; nothing kept goes', async () => {
    const store = createMemoryStore();
    const dropped = await history(store);
    const before = await stored(store);

    const first = await run(store, 0);
    expect(first.deleted).toEqual([]);
    expect(first.waiting.map((i) => i.key)).toEqual([keys.blob(dropped.sha256)]);
    expect(await stored(store)).toEqual(before);
    expect(await getJson(store, keys.gcMarks)).toEqual({ marks: { [keys.blob(dropped.sha256)]: { since: iso(0) } } });
    expect((await run(store, 23 * HOUR)).deleted).toEqual([]);

    const indexGone = await run(store, 24 * HOUR);
    expect(indexGone.deleted.map((i) => i.key)).toEqual([keys.blob(dropped.sha256)]);
    expect(indexGone.waiting).toEqual([
      { kind: 'data', key: dropped.key, sha256: dropped.sha256, size: 2, since: iso(24 * HOUR), dueAt: iso(48 * HOUR) },
    ]);
    expect((await run(store, 47 * HOUR)).deleted).toEqual([]);
    const dataGone = await run(store, 48 * HOUR);
    expect(dataGone.deleted.map((i) => i.key)).toEqual([dropped.key]);
    expect(dataGone.bytes).toBe(2);
    expect(await stored(store)).toEqual(before.filter((k) => k !== keys.blob(dropped.sha256) && k !== dropped.key));
    expect(await getJson(store, keys.gcMarks)).toEqual({ marks: {} });
  });

  it('with a zero grace, deletes index and data in one run; a dry run lists the same and changes nothing', async () => {
    const store = createMemoryStore();
    const dropped = await history(store);
    const before = await stored(store);
    const dry = await run(store, 0, 0, true);
    expect(dry.deleted.map((i) => i.key)).toEqual([keys.blob(dropped.sha256), dropped.key]);
    expect(await stored(store)).toEqual(before);
    expect(await getJson(store, keys.gcMarks)).toBeNull();
    const real = await run(store, 0, 0);
    expect(real.deleted).toEqual(dry.deleted);
    expect(await stored(store)).toEqual(before.filter((k) => k !== keys.blob(dropped.sha256) && k !== dropped.key));
  });

  it('deletes an unindexed data object (a crashed ingest) only once it has waited the grace', async () => {
    const store = createMemoryStore();
    await history(store);
    const orphan = await putData(store, 'half an ingest');
    expect((await run(store, 0)).waiting.map((i) => i.key)).toContain(orphan);
    expect((await run(store, HOUR, 2 * HOUR)).deleted.map((i) => i.key)).not.toContain(orphan);
    const gone = await run(store, 2 * HOUR, 2 * HOUR);
    expect(gone.deleted).toContainEqual(expect.objectContaining({ kind: 'data', key: orphan, sha256: null }));
    expect(await store.head(orphan)).toBeNull();
  });

  it('keeps a due candidate that a record names again by the time it would be deleted (re-checked first)', async () => {
    const base = createMemoryStore();
    const dropped = await history(base);
    // A name published between the scan and the deletion: the second walk of names/ sees it.
    let walks = 0;
    const store: ObjectStore = {
      ...base,
      list: async (prefix, options) => {
        if (prefix === keys.namesPrefix && options?.cursor === undefined && ++walks === 2)
          await publish(base, {
            name: 'boot/late',
            entry: dropped,
            etag: null,
            lastModified: null,
            startedAt: ++started,
            keep: 2,
          });
        return base.list(prefix, options);
      },
    };
    const report = await run(store, 0, 0);
    expect(report.deleted).toEqual([]);
    expect(report.rescued).toBe(1);
    expect(await store.head(dropped.key)).not.toBeNull();
  });

  it('keeps the data of an index it deleted when a fetch that had read that index publishes meanwhile', async () => {
    const base = createMemoryStore();
    const dropped = await history(base);
    // The fetch read blobs/<sha> (sharing its data key) just before GC deleted it, and publishes right after.
    const store: ObjectStore = {
      ...base,
      delete: async (key) => {
        await base.delete(key);
        if (key === keys.blob(dropped.sha256))
          await publish(base, {
            name: 'boot/k',
            entry: dropped,
            etag: null,
            lastModified: null,
            startedAt: ++started,
            keep: 2,
          });
      },
    };
    const report = await run(store, 0, 0);
    expect(report.deleted.map((i) => i.key)).toEqual([keys.blob(dropped.sha256)]);
    expect(report.rescued).toBe(1);
    expect(await store.head(dropped.key)).not.toBeNull();
  });

  it('keeps a pinned version even when no record lists it in a history', async () => {
    const store = createMemoryStore();
    const dropped = await history(store);
    const latest = (await latestPointer(store, 'boot/k')) as PointerRecord;
    const pin = { version: dropped.version, at: 'x', reason: 'pin' as const };
    await putJson(store, keys.pointer('boot/k', latest.generation + 1), {
      ...latest,
      generation: latest.generation + 1,
      pinned: pin,
    });
    const report = await run(store, 0, 0);
    expect(report.deleted).toEqual([]);
    expect(report.waiting).toEqual([]);
  });
});

const iso = (ms: number) => new Date(ms).toISOString();
