import { StorageError } from './errors.js';
import { keys } from './object-keys.js';
import { latestPointer } from './pointers.js';
import type { ConfigRecord, PointerRecord, StatusRecord } from './records.js';
import { getJson, listAll, type ObjectStore } from '../storage/object-store.js';

/** Store reads in flight while walking: a store of thousands of names is read in minutes, not hours. */
const CONCURRENCY = 16;

/**
 * What the store's records still need (store-gc.ts deletes everything else, after a grace period). Bytes are named
 * two ways: by sha256 (a version, whatever data object holds it) and by data key (a record pointing at one object).
 */
export interface References {
  readonly sha256s: Set<string>;
  /** Data keys named by a record: kept even when no blob index points at them any more. */
  readonly dataKeys: Set<string>;
  /** Versions pinned by an operator (a sha256 prefix): every blob of that version is kept. */
  readonly pinnedVersions: Set<string>;
  /** Names walked (with a pointer, a status or a resume record). */
  names: number;
  /** Live boot-config records walked. */
  configs: number;
}

/** Whether the blob of `sha256` is still needed. */
export function referencesBlob(refs: References, sha256: string): boolean {
  if (refs.sha256s.has(sha256)) return true;
  for (const v of refs.pinnedVersions) if (sha256.startsWith(v)) return true;
  return false;
}

/**
 * Reads every record that can name stored bytes: for each name (listed from `names/`, which also holds names whose
 * head hint was never written) its latest pointer record (the current version, the kept history in `versions` and
 * the pinned version), the generation before it (the previous version, even if a writer's `versions` left it out),
 * the status record's `held` version (upstream's newer bytes kept while pinned) and a Workers `resume.json` (the
 * data key of a download in progress); and every live boot-config record of every site. Memory grows with the
 * referenced versions, never with the pointer history: keys are streamed, a name's keys being contiguous.
 */
export async function collectReferences(store: ObjectStore): Promise<References> {
  const refs: References = {
    sha256s: new Set(),
    dataKeys: new Set(),
    pinnedVersions: new Set(),
    names: 0,
    configs: 0,
  };
  const nameKeys = groupByName(listAll(store, keys.namesPrefix));
  await inBatches(nameKeys, (group) =>
    readable(store, keys.pointerPrefix(group.name).slice(0, -'ptr/'.length), () => addName(store, refs, group)),
  );
  const configKeys = filter(listAll(store, keys.sitesPrefix), keys.isConfig);
  await inBatches(configKeys, async (key) => {
    const record = await readable(store, key, () => getJson<ConfigRecord>(store, key));
    // A tombstone needs no bytes: the agent deletes by path and compares hashes.
    if (!record || record.deleted) return;
    refs.configs++;
    refs.sha256s.add(record.sha256);
    refs.dataKeys.add(record.key);
  });
  return refs;
}

interface NameKeys {
  readonly name: string;
  pointer: boolean;
  status: boolean;
  resume: boolean;
}

async function addName(store: ObjectStore, refs: References, group: NameKeys): Promise<void> {
  refs.names++;
  const [record, status, resume] = await Promise.all([
    group.pointer ? latestPointer(store, group.name) : null,
    group.status ? getJson<StatusRecord>(store, keys.status(group.name)) : null,
    group.resume ? getJson<{ key?: unknown }>(store, keys.resume(group.name)) : null,
  ]);
  if (record) {
    addVersion(refs, record);
    for (const v of record.versions) addVersion(refs, v);
    if (record.pinned) refs.pinnedVersions.add(record.pinned.version);
    if (record.generation > 1) {
      const previous = await getJson<PointerRecord>(store, keys.pointer(group.name, record.generation - 1));
      if (previous) addVersion(refs, previous);
    }
  }
  if (status?.held) addVersion(refs, status.held);
  if (typeof resume?.key === 'string') refs.dataKeys.add(resume.key);
}

/**
 * A record that is not JSON (damaged, or foreign) may name bytes we cannot see: the walk fails, naming it, rather
 * than let GC delete what it might reference.
 */
async function readable<T>(store: ObjectStore, key: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof SyntaxError) throw new StorageError(store.driver, 'GET', key, `not a record: ${err.message}`);
    throw err;
  }
}

function addVersion(refs: References, v: { readonly sha256: string; readonly key: string }): void {
  refs.sha256s.add(v.sha256);
  refs.dataKeys.add(v.key);
}

/** `names/<name>/~/...` keys as one group per name (a name's keys are contiguous: see object-keys.ts `nk`). */
async function* groupByName(keyList: AsyncIterable<string>): AsyncIterable<NameKeys> {
  let group: NameKeys | null = null;
  for await (const key of keyList) {
    if (!key.includes('/~/')) continue;
    const name = keys.nameFromRecord(key);
    if (group && group.name !== name) {
      yield group;
      group = null;
    }
    group ??= { name, pointer: false, status: false, resume: false };
    if (key.startsWith(keys.pointerPrefix(name))) group.pointer = true;
    else if (key === keys.status(name)) group.status = true;
    else if (key === keys.resume(name)) group.resume = true;
  }
  if (group) yield group;
}

async function* filter(keyList: AsyncIterable<string>, keep: (key: string) => boolean): AsyncIterable<string> {
  for await (const key of keyList) if (keep(key)) yield key;
}

/** Runs `work` on every item, at most CONCURRENCY at a time, reading the source only as fast as work completes. */
export async function inBatches<T>(items: AsyncIterable<T>, work: (item: T) => Promise<void>): Promise<void> {
  let batch: T[] = [];
  for await (const item of items) {
    batch.push(item);
    if (batch.length < CONCURRENCY) continue;
    await Promise.all(batch.map(work));
    batch = [];
  }
  await Promise.all(batch.map(work));
}
