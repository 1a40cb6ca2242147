import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { changesSince, currentCursor } from '../../../src/core/events.js';
import { keys } from '../../../src/core/object-keys.js';
import { healedPointer, latestPointer, publish } from '../../../src/core/pointers.js';
import { versionOf, type VersionEntry } from '../../../src/core/records.js';
import { createMemoryStore } from '../../../src/storage/memory-store.js';
import { getJson, putJson, readAll } from '../../../src/storage/object-store.js';

const entry = (content: string, url = 'http://h/vmlinuz'): VersionEntry => {
  const sha256 = createHash('sha256').update(content).digest('hex');
  return {
    version: versionOf(sha256),
    sha256,
    size: content.length,
    url,
    fetchedAt: new Date(0).toISOString(),
    basename: 'vmlinuz',
    key: `data/${content}`,
  };
};
const input = (content: string, startedAt: number) => ({
  name: 'boot/t-vmlinuz',
  entry: entry(content),
  etag: null,
  lastModified: null,
  startedAt,
  keep: 3,
});

describe('pointer log', () => {
  it('publishes generations 1, 2, 3 and keeps versions newest first, bounded', async () => {
    const store = createMemoryStore();
    for (const [i, c] of ['a', 'b', 'c', 'd'].entries()) await publish(store, input(c, i));
    const latest = await latestPointer(store, 'boot/t-vmlinuz');
    expect(latest?.generation).toBe(4);
    expect(latest?.versions.map((v) => v.key)).toEqual(['data/d', 'data/c', 'data/b']);
  });

  it('never lets a job that started earlier replace a newer publication', async () => {
    const store = createMemoryStore();
    await publish(store, input('new', 200));
    const late = await publish(store, input('old', 100));
    expect(late.kind).toBe('superseded');
    expect((await latestPointer(store, 'boot/t-vmlinuz'))?.sha256).toBe(entry('new').sha256);
  });

  it('does not move the pointer for the same bytes', async () => {
    const store = createMemoryStore();
    await publish(store, input('same', 1));
    expect((await publish(store, input('same', 2))).kind).toBe('already-current');
    expect((await latestPointer(store, 'boot/t-vmlinuz'))?.generation).toBe(1);
  });

  it('loses no update among 20 concurrent publishers: generations 1..20, each exactly once', async () => {
    const store = createMemoryStore();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => publish(store, input(`v${i}`, i))));
    const published = results.filter((r) => r.kind === 'published').map((r) => r.record.generation);
    // Later-started publishers may legitimately supersede earlier ones; what was published is gap-free and unique.
    expect(new Set(published).size).toBe(published.length);
    const latest = await latestPointer(store, 'boot/t-vmlinuz');
    expect(latest?.generation).toBe(published.length);
    for (let g = 1; g <= published.length; g++)
      expect(await store.head(keys.pointer('boot/t-vmlinuz', g))).not.toBeNull();
  });

  it('finds the latest generation when the head hint lags behind or is missing', async () => {
    const store = createMemoryStore();
    await publish(store, input('a', 1));
    const hint = await store.get(keys.head('boot/t-vmlinuz'));
    const stale = hint ? await readAll(hint.body) : new Uint8Array();
    await publish(store, input('b', 2));
    await store.put(keys.head('boot/t-vmlinuz'), stale); // a slow writer's hint landing late
    expect((await latestPointer(store, 'boot/t-vmlinuz'))?.generation).toBe(2);
    await store.delete(keys.head('boot/t-vmlinuz'));
    expect((await latestPointer(store, 'boot/t-vmlinuz'))?.generation).toBe(2);
  });

  it('announces each publication in the change log; a publication whose publisher stopped first is healed', async () => {
    const store = createMemoryStore();
    const name = 'boot/t-vmlinuz';
    const first = await publish(store, input('a', 1));
    expect(await publish(store, input('a', 2))).toMatchObject({ kind: 'already-current' });
    const log = await changesSince(store, 0);
    expect(log.reset === false && log.events.map((e) => e.changes)).toEqual([[{ kind: 'file', name }]]);

    // A publisher that stopped right after its create-only pointer write: no change event, no hint.
    const record = { ...first.record, ...entry('b'), generation: 2, startedAt: 3 };
    await putJson(store, keys.pointer(name, 2), record, { ifNoneMatch: '*' });
    expect(await currentCursor(store)).toBe(1);
    // Readers still find it by probing, but agents following the log would not hear of it...
    expect((await latestPointer(store, name))?.generation).toBe(2);
    // ...until the next fetch job reads the name (healedPointer), whatever upstream then says.
    expect((await healedPointer(store, name, new Date(0).toISOString()))?.generation).toBe(2);
    expect(await currentCursor(store)).toBe(2);
    expect(await getJson(store, keys.head(name))).toMatchObject({ generation: 2 });
    const healed = await changesSince(store, 1);
    expect(healed.reset === false && healed.events.map((e) => e.changes)).toEqual([[{ kind: 'file', name }]]);
    // Nothing to heal: no further event.
    await healedPointer(store, name, new Date(0).toISOString());
    expect(await currentCursor(store)).toBe(2);
  });
});
