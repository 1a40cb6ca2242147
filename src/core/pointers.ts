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
  | { readonly kind: 'superseded'; readonly record: PointerRecord };

export async function publish(store: ObjectStore, input: PublishInput): Promise<PublishResult> {
  for (;;) {
    const current = await latestPointer(store, input.name);
    // A job that started before the one that published the current record carries an older view of upstream.
    if (current && current.startedAt > input.startedAt) return { kind: 'superseded', record: current };
    if (current && current.sha256 === input.entry.sha256) return { kind: 'already-current', record: current };
    const previous = (current?.versions ?? []).filter((v) => v.version !== input.entry.version);
    const record: PointerRecord = {
      ...input.entry,
      name: input.name,
      generation: (current?.generation ?? 0) + 1,
      etag: input.etag,
      lastModified: input.lastModified,
      startedAt: input.startedAt,
      versions: [input.entry, ...previous].slice(0, Math.max(2, input.keep)),
    };
    try {
      await putJson(store, keys.pointer(input.name, record.generation), record, { ifNoneMatch: '*' });
    } catch (err) {
      if (err instanceof PreconditionFailedError) continue;
      throw err;
    }
    // Announced only once the record exists, so a reader of the event finds it. Stopping right here leaves the hint
    // behind the log, which is how healedPointer() knows to announce it later.
    await appendChanges(store, [{ kind: 'file', name: input.name }], record.fetchedAt);
    // The hint only speeds up readers; they probe forward, so a lagging or lost hint write is harmless.
    await putJson(store, keys.head(input.name), record);
    return { kind: 'published', record };
  }
}
