/**
 * `catalog.json`: a first sync reads one snapshot plus the change log after it instead of every name, and gets
 * exactly what reading every name gives, whatever state the snapshot is in (current, behind, far behind, ahead of
 * the log, damaged, compacted past). A full refresh announces a publication whose change event was lost.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readCatalog, readEntries, refreshCatalogSnapshot } from '../../../src/core/catalog.js';
import { readChanges } from '../../../src/core/change-feed.js';
import { compactEvents, verifiedCursor } from '../../../src/core/events.js';
import { keys } from '../../../src/core/object-keys.js';
import { publish } from '../../../src/core/pointers.js';
import { versionOf, type Catalog, type PointerRecord } from '../../../src/core/records.js';
import { createMemoryStore } from '../../../src/storage/memory-store.js';
import { getJson, listAll, putJson, type ObjectStore } from '../../../src/storage/object-store.js';
import { countingStore } from '../../helpers/counting-store.js';

const AT = '2024-01-01T00:00:00.000Z';
const N = 300;
const name = (i: number) => `boot/snap-${String(i).padStart(4, '0')}-vmlinuz`;
let startedAt = 0;

async function publishName(store: ObjectStore, n: string, content: string) {
  const sha256 = createHash('sha256').update(content).digest('hex');
  const entry = { version: versionOf(sha256), sha256, size: content.length, url: 'http://m/vmlinuz', fetchedAt: AT };
  const result = await publish(store, {
    name: n,
    entry: { ...entry, basename: 'vmlinuz', key: `data/${sha256}` },
    etag: null,
    lastModified: null,
    startedAt: ++startedAt,
    keep: 3,
  });
  expect(result.kind).toBe('published');
}

async function storeWith(count: number): Promise<ObjectStore> {
  const store = createMemoryStore();
  for (let i = 0; i < count; i++) await publishName(store, name(i), `${name(i)} v1`);
  return store;
}

/** What reading every name gives: the truth a snapshot-based read must equal. */
async function everyName(store: ObjectStore) {
  const names: string[] = [];
  for await (const key of listAll(store, keys.headsPrefix)) if (keys.isHead(key)) names.push(keys.nameFromHead(key));
  return readEntries(store, names);
}

const summary = (c: Catalog) => c.entries.map((e) => `${e.name}@${e.generation}`);

describe('catalog snapshot', () => {
  it('without a snapshot, a catalog read reads every name; with one, a few operations whatever the count', async () => {
    const store = await storeWith(N);
    const counted = countingStore(store);
    const full = await readCatalog(counted.store);
    expect(counted.count('get')).toBeGreaterThanOrEqual(2 * N);

    expect(await refreshCatalogSnapshot(store, { full: false, at: AT })).toBe('unusable');
    expect(await refreshCatalogSnapshot(store, { full: true, at: AT })).toBe('written');
    counted.reset();
    const fast = await readCatalog(counted.store);
    expect(counted.count()).toBeLessThanOrEqual(6);
    expect(fast).toEqual(full);
    expect(await refreshCatalogSnapshot(store, { full: false, at: AT })).toBe('current');
  });

  it('applies the log after the snapshot: changed and new names read again, the rest as stored', async () => {
    const store = await storeWith(N);
    await refreshCatalogSnapshot(store, { full: true, at: AT });
    await publishName(store, name(7), 'v2 of 7');
    await publishName(store, name(N + 1), 'a new name');
    await publishName(store, name(7), 'v3 of 7');

    const counted = countingStore(store);
    const catalog = await readCatalog(counted.store);
    expect(catalog.entries).toEqual(await everyName(store));
    expect(catalog.entries.find((e) => e.name === name(7))?.generation).toBe(3);
    expect(catalog.cursor).toBe(String(await verifiedCursor(store)));
    // The snapshot, the head, one LIST and three events, two names: nowhere near N.
    expect(counted.count()).toBeLessThanOrEqual(20);

    expect(await refreshCatalogSnapshot(store, { full: false, at: AT })).toBe('written');
    counted.reset();
    expect(summary(await readCatalog(counted.store))).toEqual(summary(catalog));
    expect(counted.count()).toBeLessThanOrEqual(6);
  });

  it('a later snapshot write of an older state only lengthens the delta: reads stay exact', async () => {
    const store = await storeWith(20);
    await refreshCatalogSnapshot(store, { full: true, at: AT });
    const old = await getJson<unknown>(store, keys.catalogSnapshot);
    await publishName(store, name(3), 'v2 of 3');
    await refreshCatalogSnapshot(store, { full: false, at: AT });
    // A slower fetcher instance writes the state it read before the publication.
    await putJson(store, keys.catalogSnapshot, old);
    expect((await readCatalog(store)).entries).toEqual(await everyName(store));
  });

  it.each([
    ['damaged JSON', (s: ObjectStore) => s.put(keys.catalogSnapshot, '{"seq": 3, "entr')],
    ['not a snapshot', (s: ObjectStore) => putJson(s, keys.catalogSnapshot, { seq: 1, entries: [{ name: 1 }] })],
    [
      'ahead of the log (another store)',
      (s: ObjectStore) => putJson(s, keys.catalogSnapshot, { seq: 1e6, entries: [] }),
    ],
  ])('a snapshot that is %s is not trusted: every name is read', async (_, plant) => {
    const store = await storeWith(30);
    await plant(store);
    const counted = countingStore(store);
    const catalog = await readCatalog(counted.store);
    expect(catalog.entries).toEqual(await everyName(store));
    expect(catalog.entries).toHaveLength(30);
    expect(counted.count('get')).toBeGreaterThanOrEqual(60);
  });

  it('far behind the log (more events than names) or compacted past: every name is read, exactly', async () => {
    const store = await storeWith(10);
    await refreshCatalogSnapshot(store, { full: true, at: AT });
    for (let i = 0; i < 70; i++) await publishName(store, name(i % 10), `churn ${i}`);
    const counted = countingStore(store);
    expect((await readCatalog(counted.store)).entries).toEqual(await everyName(store));
    // 70 events after a 10-name snapshot (and under 64 + 10): the delta is still applied...
    expect(counted.count('list')).toBeGreaterThanOrEqual(1);

    for (let i = 0; i < 10; i++) await publishName(store, name(i), `more churn ${i}`);
    counted.reset();
    expect((await readCatalog(counted.store)).entries).toEqual(await everyName(store));
    // ...80 are past max(64, 10): the heads are listed instead of the log.
    expect(counted.calls.some((c) => c.op === 'list' && c.key === keys.headsPrefix)).toBe(true);

    const fresh = await storeWith(10);
    await refreshCatalogSnapshot(fresh, { full: true, at: AT });
    for (let i = 0; i < 5; i++) await publishName(fresh, name(i), `after ${i}`);
    await compactEvents(fresh, 2);
    expect((await readCatalog(fresh)).entries).toEqual(await everyName(fresh));
  });

  it('a full refresh announces a publication whose change event was never written', async () => {
    const store = await storeWith(5);
    await refreshCatalogSnapshot(store, { full: true, at: AT });
    const cursor = (await readCatalog(store)).cursor;
    // A publisher stopped after its pointer write: no event, no head hint.
    const head = await getJson<PointerRecord>(store, keys.head(name(2)));
    if (!head) throw new Error('no head');
    const lost = { ...head, generation: head.generation + 1, startedAt: ++startedAt };
    await putJson(store, keys.pointer(name(2), lost.generation), lost);
    expect(await readChanges(store, { since: cursor, site: null })).toBe('unchanged');

    expect(await refreshCatalogSnapshot(store, { full: true, at: AT })).toBe('written');
    const delta = await readChanges(store, { since: cursor, site: null });
    expect(delta !== 'unchanged' && delta.files.map((f) => [f.name, f.generation])).toEqual([[name(2), 2]]);
    expect((await readCatalog(store)).entries.find((e) => e.name === name(2))?.generation).toBe(2);
  });
});
