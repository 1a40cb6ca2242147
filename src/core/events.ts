import { PreconditionFailedError } from './errors.js';
import { keys } from './object-keys.js';
import { getJson, putJson, type ObjectStore } from '../storage/object-store.js';

/**
 * The change log agents follow instead of re-reading every name: `events/<seq>.json`, one create-only object per
 * sequence number, so two writers (threads, processes, instances) can never both take a seq and nothing is lost or
 * reordered (the pointer log's pattern, pointers.ts, with one global log). A writer creates `seq + 1` only after it
 * saw `seq` exist, and compaction deletes oldest first, so the log is always one contiguous run `[oldest, latest]`:
 * a reader whose cursor is older than `oldest` notices (the first event after it is not `cursor + 1`) and resyncs.
 *
 * An event says what changed, not to what: readers read the current head of each name (or config record) it
 * mentions, so a duplicate event costs one extra read and never a wrong state. Appends of one process to one store
 * are group-committed: while one append is in flight, the next ones queue and go out together as one event, so a
 * burst of N publications costs one contended create-only write instead of N racing ones.
 *
 * Writers append *after* the state they describe (pointer, config record) is written, so a reader that sees an event
 * also sees that state. A writer that stops in between leaves a change without an event: see `publish()` for how it
 * heals, and the agents' periodic full resync.
 */

export type Change =
  | { readonly kind: 'file'; readonly name: string }
  | { readonly kind: 'config'; readonly site: string; readonly path: string };

export interface ChangeEvent {
  readonly seq: number;
  readonly at: string;
  readonly changes: readonly Change[];
}

interface EventsHead {
  readonly seq: number;
}

/** Events kept by compaction: an agent further behind than this gets a full snapshot instead of a delta. */
export const DEFAULT_KEEP_EVENTS = 10_000;
const MAX_BATCH = 500;
const LIST_PAGE = 1000;
const READ_CONCURRENCY = 16;

/** A cursor as this API writes it (the API document publishes it as the `since` pattern). */
export const CURSOR_PATTERN = /^\d{1,16}$/;

/** The cursor as agents see it: an opaque string (a decimal seq today). `null` when it is not one of ours. */
export function parseCursor(raw: string): number | null {
  return CURSOR_PATTERN.test(raw) ? Number(raw) : null;
}
export const formatCursor = (seq: number): string => String(seq);

const exists = async (store: ObjectStore, seq: number) => (await store.head(keys.event(seq))) !== null;

/** Walks forward from `seq` while the next event exists. */
async function probe(store: ObjectStore, seq: number): Promise<number> {
  let at = seq;
  while (await exists(store, at + 1)) at++;
  return at;
}

/** The last event by listing the log (no usable hint: never written, lost, or pointing into a compacted range). */
async function lastListed(store: ObjectStore): Promise<number> {
  let last = 0;
  let cursor: string | undefined;
  do {
    const page = await store.list(keys.eventsPrefix, cursor === undefined ? {} : { cursor });
    const key = page.keys[page.keys.length - 1];
    if (key !== undefined) last = keys.seqFromEvent(key);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return last;
}

/**
 * The latest seq as a reader sees it: the head hint, then a forward probe (one GET and one HEAD when nothing
 * changed). `known` is the reader's own cursor: a hint behind it (a slow writer's late hint) is skipped when that
 * event exists. A result below `known` means `known` is not in this log (compacted away, or another store's).
 */
export async function currentCursor(store: ObjectStore, known: number | null = null): Promise<number> {
  const hint = await getJson<EventsHead>(store, keys.eventsHead);
  let from: number;
  if (known !== null && known > (hint?.seq ?? 0) && (await exists(store, known))) from = known;
  else if (hint) from = hint.seq;
  else from = await lastListed(store);
  return probe(store, from);
}

/**
 * The latest seq, verified to exist: safe to build on. Checking `seq` *after* seeing `seq + 1` missing matters: the
 * hint may point into a compacted range, where `seq + 1` is missing because it was deleted, not because it was never
 * written, and reusing a deleted seq would hide that event from every reader already past it. Since compaction
 * deletes oldest first, `seq` still existing after `seq + 1` was missing proves `seq + 1` was never created.
 */
async function settledFrom(store: ObjectStore, from: number): Promise<number> {
  const seq = await probe(store, from);
  if (seq === 0 || (await exists(store, seq))) return seq;
  const listed = await lastListed(store);
  const again = await probe(store, listed);
  if (again === 0 || (await exists(store, again))) return again;
  return settledFrom(store, again);
}

export async function verifiedCursor(store: ObjectStore): Promise<number> {
  const hint = await getJson<EventsHead>(store, keys.eventsHead);
  return settledFrom(store, hint ? hint.seq : await lastListed(store));
}

interface Pending {
  readonly changes: readonly Change[];
  readonly at: string;
  resolve(seq: number): void;
  reject(err: unknown): void;
}

interface Appender {
  queue: Pending[];
  running: boolean;
  /** The last seq this appender wrote: a hint older than that (another writer's late hint) is not walked again. */
  last: number | null;
}

/** One appender per store object: a process shares one store object, so its appends are serialised and batched. */
const appenders = new WeakMap<ObjectStore, Appender>();

/** Appends `changes` to the log; resolves with the seq of the event that holds them once it is written. */
export function appendChanges(store: ObjectStore, changes: readonly Change[], at: string): Promise<number> {
  let appender = appenders.get(store);
  if (!appender) appenders.set(store, (appender = { queue: [], running: false, last: null }));
  const a = appender;
  const done = new Promise<number>((resolve, reject) => a.queue.push({ changes, at, resolve, reject }));
  if (!a.running) void drain(store, a);
  return done;
}

async function drain(store: ObjectStore, a: Appender): Promise<void> {
  a.running = true;
  try {
    while (a.queue.length > 0) {
      const batch = a.queue.splice(0, MAX_BATCH);
      try {
        const first = batch[0] as Pending;
        const seq = await writeEvent(
          store,
          a,
          first.at,
          batch.flatMap((p) => p.changes),
        );
        for (const p of batch) p.resolve(seq);
      } catch (err) {
        a.last = null;
        for (const p of batch) p.reject(err);
      }
    }
  } finally {
    a.running = false;
  }
}

async function writeEvent(store: ObjectStore, a: Appender, at: string, changes: readonly Change[]): Promise<number> {
  // From the newer of the hint and this process's own last append: other processes may have appended since.
  const hint = await getJson<EventsHead>(store, keys.eventsHead);
  const from = Math.max(hint?.seq ?? 0, a.last ?? 0);
  let seq = await settledFrom(store, hint || a.last !== null ? from : await lastListed(store));
  for (;;) {
    const event: ChangeEvent = { seq: seq + 1, at, changes };
    try {
      await putJson(store, keys.event(event.seq), event, { ifNoneMatch: '*' });
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      // Another process took that seq: it exists now, so settle from there.
      seq = await settledFrom(store, event.seq);
      continue;
    }
    a.last = event.seq;
    // The hint only speeds up readers; they probe forward, so a lagging or lost hint write is harmless.
    await putJson(store, keys.eventsHead, { seq: event.seq } satisfies EventsHead);
    return event.seq;
  }
}

export type ChangesPage =
  | { readonly reset: true }
  | {
      readonly reset: false;
      readonly events: readonly ChangeEvent[];
      /** The seq of the last event returned (`cursor` itself when none). */
      readonly cursor: number;
      /** More events follow: ask again from `cursor`. */
      readonly more: boolean;
    };

/**
 * The events after `cursor`, one LIST call per page plus one GET per event. `reset` when the log no longer reaches
 * back to `cursor + 1` (compacted past it, or `cursor` is not from this log): the caller needs a full snapshot.
 */
export async function changesSince(store: ObjectStore, cursor: number, limit = LIST_PAGE): Promise<ChangesPage> {
  const page = await store.list(keys.eventsPrefix, { cursor: keys.event(cursor), limit });
  const seqs = page.keys.map(keys.seqFromEvent);
  // Contiguous from cursor + 1: anything else means events between were deleted.
  if (seqs.some((seq, i) => seq !== cursor + 1 + i)) return { reset: true };
  if (seqs.length === 0) {
    // Nothing after it: fine if `cursor` is the latest event (or the log is empty), not if it was never written.
    return cursor === 0 || (await exists(store, cursor))
      ? { reset: false, events: [], cursor, more: false }
      : { reset: true };
  }
  const events: ChangeEvent[] = [];
  for (let i = 0; i < seqs.length; i += READ_CONCURRENCY) {
    const batch = await Promise.all(
      seqs.slice(i, i + READ_CONCURRENCY).map((seq) => getJson<ChangeEvent>(store, keys.event(seq))),
    );
    for (const event of batch) {
      // Listed, then gone: compaction is deleting this range right now.
      if (!event) return { reset: true };
      events.push(event);
    }
  }
  return { reset: false, events, cursor: seqs[seqs.length - 1] as number, more: page.cursor !== undefined };
}

/**
 * Every change after `since`, page by page, and the seq of the last event read; null when the log no longer reaches
 * back to `since` (the caller needs a full snapshot). Costs one LIST per 1000 events plus one GET per event.
 */
export async function collectChanges(
  store: ObjectStore,
  since: number,
): Promise<{ readonly changes: readonly Change[]; readonly cursor: number } | null> {
  const changes: Change[] = [];
  let cursor = since;
  for (;;) {
    const page = await changesSince(store, cursor);
    if (page.reset) return null;
    for (const event of page.events) changes.push(...event.changes);
    cursor = page.cursor;
    if (!page.more) return { changes, cursor };
  }
}

/**
 * Deletes every event but the newest `keep`, oldest first and one at a time: at every moment the log is still one
 * contiguous run, which is what lets readers detect that they fell behind and writers never reuse a deleted seq.
 * Safe to run from several processes at once (each deletes in ascending order). Returns the number deleted.
 */
export async function compactEvents(store: ObjectStore, keep = DEFAULT_KEEP_EVENTS): Promise<number> {
  const latest = await verifiedCursor(store);
  const floor = latest - Math.max(1, keep);
  if (floor <= 0) return 0;
  // A hint inside the range about to go would send every reader to the slow path: move it first.
  const hint = await getJson<EventsHead>(store, keys.eventsHead);
  if ((hint?.seq ?? 0) <= floor) await putJson(store, keys.eventsHead, { seq: latest } satisfies EventsHead);
  let deleted = 0;
  for (;;) {
    // Always from the start: what this loop deleted is gone, what another compactor deleted too.
    const page = await store.list(keys.eventsPrefix, { limit: LIST_PAGE });
    const doomed = page.keys.filter((key) => keys.seqFromEvent(key) <= floor);
    for (const key of doomed) {
      await store.delete(key);
      deleted++;
    }
    if (doomed.length < page.keys.length || page.cursor === undefined) return deleted;
  }
}
