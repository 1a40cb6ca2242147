import { PreconditionFailedError } from './errors.js';
import { appendChanges } from './events.js';
import { keys } from './object-keys.js';
import type { PointerRecord, VersionEntry } from './records.js';
import { getJson, listAll, putJson, type ObjectStore } from '../storage/object-store.js';

/**
 * The pointer of a name is an append-only log of create-only records: publishing generation g+1 is a create-only
 * write of `ptr/<g+1>`, so two writers (threads, processes, instances) can never both win the same generation, and
 * no update is lost or reordered. This needs only `If-None-Match: *`, which every S3 engine and R2 honour.
 */

export async function latestPointer(store: ObjectStore, name: string): Promise<PointerRecord | null> {
  return (await readLatest(store, name)).record;
}

/** The latest record, and whether the head hint was behind it (a publisher stopped before finishing). */
async function readLatest(
  store: ObjectStore,
  name: string,
): Promise<{ record: PointerRecord | null; hintBehind: boolean }> {
  const hint = await getJson<PointerRecord>(store, keys.head(name));
  let latest: PointerRecord | null = hint;
  if (!latest) {
    // No hint (first publish crashed before writing it, or never published): the log itself is the truth.
    let lastKey: string | undefined;
    for await (const key of listAll(store, keys.pointerPrefix(name))) lastKey = key;
    if (!lastKey) return { record: null, hintBehind: false };
    latest = await getJson<PointerRecord>(store, lastKey);
    if (!latest) return { record: null, hintBehind: false };
  }
  // The hint is written after the log entry and may lag behind: probe forward.
  let current: PointerRecord = latest;
  for (;;) {
    const next: PointerRecord | null = await getJson<PointerRecord>(store, keys.pointer(name, current.generation + 1));
    if (!next) return { record: current, hintBehind: current.generation !== hint?.generation };
    current = next;
  }
}

/**
 * `latestPointer` for the fetch job, which may write: a head hint behind the log means a publisher stopped between
 * its pointer write and its hint write, perhaps before it appended the change event, so agents following the change
 * log may not know about that generation. Append the event (again: a duplicate costs a reader one extra read) and
 * fix the hint. This heals the gap on the next revalidation of the name, even when upstream has not changed.
 */
export async function healedPointer(store: ObjectStore, name: string, at: string): Promise<PointerRecord | null> {
  const { record, hintBehind } = await readLatest(store, name);
  if (record && hintBehind) {
    await appendChanges(store, [{ kind: 'file', name }], at);
    await putJson(store, keys.head(name), record);
  }
  return record;
}

export interface PublishInput {
  readonly name: string;
  readonly entry: VersionEntry;
  readonly etag: string | null;
  readonly lastModified: string | null;
  readonly startedAt: number;
  readonly keep: number;
}

export type PublishResult =
  | { readonly kind: 'published'; readonly record: PointerRecord }
  | { readonly kind: 'already-current'; readonly record: PointerRecord }
  | { readonly kind: 'superseded'; readonly record: PointerRecord }
  /** The name is pinned (a rollback): nothing published; the caller records `entry` as held (see rollback.ts). */
  | { readonly kind: 'held'; readonly record: PointerRecord; readonly entry: VersionEntry };

export async function publish(store: ObjectStore, input: PublishInput): Promise<PublishResult> {
  const outcome = await writeNext<PublishResult>(store, input.name, (current) => {
    // A job that started before the one that published the current record carries an older view of upstream.
    if (current && current.startedAt > input.startedAt) return { stop: { kind: 'superseded', record: current } };
    if (current && current.sha256 === input.entry.sha256) return { stop: { kind: 'already-current', record: current } };
    if (current?.pinned) return { stop: { kind: 'held', record: current, entry: input.entry } };
    const previous = (current?.versions ?? []).filter((v) => v.version !== input.entry.version);
    return {
      ...input.entry,
      name: input.name,
      generation: (current?.generation ?? 0) + 1,
      etag: input.etag,
      lastModified: input.lastModified,
      startedAt: input.startedAt,
      versions: [input.entry, ...previous].slice(0, Math.max(2, input.keep)),
    };
  });
  if ('stop' in outcome) return outcome.stop;
  await announce(store, [outcome], outcome.fetchedAt);
  return { kind: 'published', record: outcome };
}

/** What `writeNext` is told to do instead of writing: stop, and answer `stop`. */
export interface Stop<T> {
  readonly stop: T;
}

/**
 * The create-only write of a name's next generation: `next` sees the latest record and returns the one to write (or
 * a `Stop`, writing nothing); losing the race for the generation reads again, so every mover (publish, rollback,
 * unpin) decides on the record it replaces. The caller announces what it wrote (`announce`).
 */
export async function writeNext<T = never>(
  store: ObjectStore,
  name: string,
  next: (current: PointerRecord | null) => PointerRecord | Stop<T> | Promise<PointerRecord | Stop<T>>,
): Promise<PointerRecord | Stop<T>> {
  for (;;) {
    const decided = await next(await latestPointer(store, name));
    if ('stop' in decided) return decided;
    try {
      await putJson(store, keys.pointer(name, decided.generation), decided, { ifNoneMatch: '*' });
      return decided;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
  }
}

/**
 * Announces records `writeNext` wrote, in one change event: only once they exist, so a reader of the event finds
 * them. Stopping before this leaves the hint behind the log, which is how healedPointer() knows to announce them
 * later. The hint only speeds up readers; they probe forward, so a lagging or lost hint write is harmless.
 */
export async function announce(store: ObjectStore, records: readonly PointerRecord[], at: string): Promise<void> {
  if (records.length === 0) return;
  await appendChanges(
    store,
    records.map((r) => ({ kind: 'file', name: r.name })),
    at,
  );
  await Promise.all(records.map((r) => putJson(store, keys.head(r.name), r)));
}
