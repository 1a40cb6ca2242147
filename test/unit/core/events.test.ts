import { describe, expect, it } from 'vitest';
import {
  appendChanges,
  changesSince,
  compactEvents,
  currentCursor,
  verifiedCursor,
  type Change,
  type ChangeEvent,
} from '../../../src/core/events.js';
import { keys } from '../../../src/core/object-keys.js';
import { createMemoryStore } from '../../../src/storage/memory-store.js';
import { getJson, putJson, type ObjectStore } from '../../../src/storage/object-store.js';

const AT = '2024-01-01T00:00:00.000Z';
const file = (name: string): Change => ({ kind: 'file', name });

/** Another process on the same store: a distinct store object, so nothing is shared in-process (no group commit). */
const otherProcess = (store: ObjectStore): ObjectStore => ({ ...store });

async function allEvents(store: ObjectStore): Promise<ChangeEvent[]> {
  const page = await changesSince(store, 0, 10_000);
  if (page.reset) throw new Error('unexpected reset');
  return [...page.events];
}

async function seqsInStore(store: ObjectStore): Promise<number[]> {
  return (await store.list(keys.eventsPrefix, { limit: 100_000 })).keys.map(keys.seqFromEvent);
}

async function appendMany(store: ObjectStore, n: number, from = 0): Promise<void> {
  for (let i = from; i < from + n; i++) await appendChanges(store, [file(`n${i}`)], AT);
}

describe('change log', () => {
  it('appends events in order and reads them back after a cursor', async () => {
    const store = createMemoryStore();
    expect(await currentCursor(store)).toBe(0);
    expect(await appendChanges(store, [file('a')], AT)).toBe(1);
    expect(await appendChanges(store, [{ kind: 'config', site: 'east', path: 'pxelinux.cfg/x' }], AT)).toBe(2);
    expect(await appendChanges(store, [file('b')], AT)).toBe(3);
    expect(await currentCursor(store)).toBe(3);
    expect(await allEvents(store)).toEqual([
      { seq: 1, at: AT, changes: [file('a')] },
      { seq: 2, at: AT, changes: [{ kind: 'config', site: 'east', path: 'pxelinux.cfg/x' }] },
      { seq: 3, at: AT, changes: [file('b')] },
    ]);
    const after = await changesSince(store, 2);
    expect(after).toMatchObject({ reset: false, cursor: 3, more: false });
    expect(after.reset === false && after.events.map((e) => e.seq)).toEqual([3]);
    expect(await changesSince(store, 3)).toEqual({ reset: false, events: [], cursor: 3, more: false });
    // Pages: one LIST each, `more` until the end.
    const first = await changesSince(store, 0, 2);
    expect(first).toMatchObject({ reset: false, cursor: 2, more: true });
  });

  it('20 concurrent appenders in different processes take seq 1..20, each exactly once', async () => {
    const store = createMemoryStore();
    const seqs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => appendChanges(otherProcess(store), [file(`n${i}`)], AT)),
    );
    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const events = await allEvents(store);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(events.flatMap((e) => e.changes.map((c) => (c.kind === 'file' ? c.name : '')))).toHaveLength(20);
    expect(new Set(events.flatMap((e) => e.changes.map((c) => (c.kind === 'file' ? c.name : ''))))).toHaveProperty(
      'size',
      20,
    );
  });

  it('group-commits concurrent appends of one process: every change once, fewer events than appends', async () => {
    const store = createMemoryStore();
    const seqs = await Promise.all(Array.from({ length: 50 }, (_, i) => appendChanges(store, [file(`n${i}`)], AT)));
    const events = await allEvents(store);
    expect(events.length).toBeLessThan(50);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    const names = events.flatMap((e) => e.changes.map((c) => (c.kind === 'file' ? c.name : '')));
    expect([...names].sort()).toEqual(Array.from({ length: 50 }, (_, i) => `n${i}`).sort());
    // Each caller learns the seq of the event that holds its change.
    for (const [i, seq] of seqs.entries()) {
      expect(events.find((e) => e.seq === seq)?.changes).toContainEqual(file(`n${i}`));
    }
  });

  it('finds the latest seq when the head hint lags behind or is missing, and appends after it', async () => {
    const store = createMemoryStore();
    await appendMany(store, 5);
    await putJson(store, keys.eventsHead, { seq: 2 }); // a slow writer's hint landing late
    expect(await currentCursor(store)).toBe(5);
    // A reader that knows 5 does not walk from the stale hint.
    expect(await currentCursor(store, 5)).toBe(5);
    expect(await appendChanges(otherProcess(store), [file('x')], AT)).toBe(6);
    await store.delete(keys.eventsHead);
    expect(await currentCursor(store)).toBe(6);
    expect(await appendChanges(otherProcess(store), [file('y')], AT)).toBe(7);
    expect(await seqsInStore(store)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(await getJson(store, keys.eventsHead)).toEqual({ seq: 7 });
  });

  it('answers a delta after a cursor the log still reaches, and reset once compaction passed it', async () => {
    const store = createMemoryStore();
    await appendMany(store, 30);
    expect(await compactEvents(store, 10)).toBe(20);
    expect(await seqsInStore(store)).toEqual(Array.from({ length: 10 }, (_, i) => i + 21));
    // 20 -> 21 is still there: a delta.
    const delta = await changesSince(store, 20);
    expect(delta.reset === false && delta.events.map((e) => e.seq)).toEqual(
      Array.from({ length: 10 }, (_, i) => i + 21),
    );
    expect((await changesSince(store, 25)).reset).toBe(false);
    // 19 -> 20 was deleted: the reader cannot know what it missed.
    expect(await changesSince(store, 19)).toEqual({ reset: true });
    expect(await changesSince(store, 0)).toEqual({ reset: true });
    // A cursor this log never reached (another store's, or a log that was wiped).
    expect(await changesSince(store, 99)).toEqual({ reset: true });
    // Nothing to do the second time; the newest event always stays.
    expect(await compactEvents(store, 10)).toBe(0);
    expect(await compactEvents(store, 0)).toBe(9);
    expect(await seqsInStore(store)).toEqual([30]);
  });

  it('compaction deletes oldest first: the log is contiguous after every single delete, even with two compactors', async () => {
    const inner = createMemoryStore();
    await appendMany(inner, 60);
    const holes: string[] = [];
    const orders: number[][] = [[], []];
    const watched = (order: number[]): ObjectStore => ({
      ...inner,
      async delete(key) {
        await inner.delete(key);
        order.push(keys.seqFromEvent(key));
        const seqs = await seqsInStore(inner);
        if (seqs.some((s, i) => i > 0 && s !== (seqs[i - 1] as number) + 1)) holes.push(seqs.join(','));
      },
    });
    const deleted = await Promise.all(orders.map((order) => compactEvents(watched(order), 15)));
    expect(holes).toEqual([]);
    expect(await seqsInStore(inner)).toEqual(Array.from({ length: 15 }, (_, i) => i + 46));
    const total = deleted.reduce((a, b) => a + b, 0);
    // Both may delete the same event (deleting is idempotent); together they deleted the 45 oldest.
    expect(total).toBeGreaterThanOrEqual(45);
    expect(orders.flat().length).toBe(total);
    // Each compactor deletes in ascending order.
    for (const order of orders) expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  it('never reuses a compacted seq, even when the hint points into the compacted range', async () => {
    // Reusing seq 4 here would put a new change below the cursor of every reader already at 30: lost for them.
    const store = createMemoryStore();
    await appendMany(store, 30);
    await compactEvents(store, 10);
    await putJson(store, keys.eventsHead, { seq: 3 }); // a writer that stalled since seq 3 writes its hint now
    expect(await verifiedCursor(store)).toBe(30);
    expect(await appendChanges(otherProcess(store), [file('late')], AT)).toBe(31);
    expect(await store.head(keys.event(4))).toBeNull();
    const reader = await changesSince(store, 30);
    expect(reader.reset === false && reader.events.map((e) => e.changes)).toEqual([[file('late')]]);
  });
});
