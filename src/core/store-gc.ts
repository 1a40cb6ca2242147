import { collectReferences, inBatches, referencesBlob, type References } from './gc-references.js';
import { keys } from './object-keys.js';
import type { Clock } from './ports.js';
import { getJson, listAll, putJson, type ObjectStore } from '../storage/object-store.js';

/**
 * Central GC of the store: bytes that no record references any more (versions that fell out of every name's kept
 * history, crashed ingests) are deleted once they have stayed unreferenced for a grace period.
 *
 * Stores give no portable last-modified time (the ObjectStore interface has none), so GC keeps its own: `gc/marks.json`
 * records when each candidate was first seen unreferenced; a candidate goes only when its mark is at least `grace`
 * old, and only if a fresh walk of every record, just before deleting, still finds no reference to it.
 *
 * A version goes in two steps: its blob index first (after that no fetch can reuse its bytes), then its data object,
 * unindexed from then on, after the grace again (with a zero grace, in the same run after another walk). A fetch that
 * read the index just before it went and publishes the old data key is then seen by a later walk, so the bytes a
 * pointer names are never deleted under it. An unindexed data object with no mark is an ingest in flight or one that
 * crashed between writing its bytes and indexing them: it goes after the grace like the rest.
 */

export interface GcOptions {
  readonly graceMs: number;
  /** Report what would go; write and delete nothing (not even the marks). */
  readonly dryRun: boolean;
  readonly clock: Clock;
}

export interface GcItem {
  readonly kind: 'blob' | 'data';
  /** Store key: `blobs/<sha256>` or `data/<id>`. */
  readonly key: string;
  /** The version's sha256 (a data object's when it was a deleted blob's, else null). */
  readonly sha256: string | null;
  readonly size: number;
  /** When GC first saw it unreferenced, ISO 8601. */
  readonly since: string;
  /** When it may go: `since` + grace. */
  readonly dueAt: string;
}

export interface GcReport {
  readonly dryRun: boolean;
  readonly graceMs: number;
  readonly names: number;
  readonly configs: number;
  readonly blobs: number;
  readonly dataObjects: number;
  /** Deleted (or, dry run, due to go now), blob indexes before data objects. */
  readonly deleted: readonly GcItem[];
  /** Unreferenced, within their grace period. */
  readonly waiting: readonly GcItem[];
  /** Due, but referenced again when re-checked just before deleting: kept, mark dropped. */
  readonly rescued: number;
  /** Bytes of the data objects deleted (or due). */
  readonly bytes: number;
}

interface Mark {
  readonly since: string;
  readonly sha256?: string;
}
type Marks = Readonly<Record<string, Mark>>;

/** What the scan found unreferenced; a blob carries the key of its data object. */
interface Candidate {
  readonly kind: 'blob' | 'data';
  readonly key: string;
  readonly sha256: string | null;
  readonly size: number;
  readonly dataKey?: string;
}

type Dated = GcItem & { readonly dataKey?: string };

export async function collectGarbage(store: ObjectStore, opts: GcOptions): Promise<GcReport> {
  const now = opts.clock.now();
  const marks = await readMarks(store);
  const refs = await collectReferences(store);
  const scan = await findCandidates(store, refs, marks);
  const dated = (c: Candidate, since: string): Dated => ({ ...c, since, dueAt: iso(Date.parse(since) + opts.graceMs) });
  const isDue = (i: GcItem) => Date.parse(i.dueAt) <= now;
  const all = scan.candidates.map((c) => dated(c, marks[c.key]?.since ?? iso(now)));
  const waiting: GcItem[] = all.filter((i) => !isDue(i)).map(plain);
  const dueBlobs = all.filter((i) => isDue(i) && i.kind === 'blob');
  const dueData = all.filter((i) => isDue(i) && i.kind === 'data');
  const deleted: GcItem[] = [];
  let rescued = 0;

  // Re-checked just before deleting: a fresh walk of every record.
  const recheck = opts.dryRun || dueBlobs.length + dueData.length === 0 ? refs : await collectReferences(store);
  // Blob indexes first: their data objects become unindexed, and wait (or, with a zero grace, follow).
  for (const blob of dueBlobs) {
    if (referencesBlob(recheck, blob.sha256 ?? '')) {
      rescued++;
      continue;
    }
    if (!opts.dryRun) await store.delete(blob.key);
    deleted.push(plain(blob));
    if (blob.dataKey === undefined || recheck.dataKeys.has(blob.dataKey)) continue;
    const data = dated({ kind: 'data', key: blob.dataKey, sha256: blob.sha256, size: blob.size }, iso(now));
    if (isDue(data)) dueData.push(data);
    else waiting.push(data);
  }

  // Walked again once indexes went: a fetch that reused one just before has published its data key by now.
  const indexesWent = deleted.length > 0 && !opts.dryRun;
  const last = indexesWent && dueData.length > 0 ? await collectReferences(store) : recheck;
  let bytes = 0;
  for (const data of dueData) {
    if (last.dataKeys.has(data.key)) {
      rescued++;
      continue;
    }
    if (!opts.dryRun) await store.delete(data.key);
    deleted.push(plain(data));
    bytes += data.size;
  }

  if (!opts.dryRun) await writeMarks(store, marks, waiting);
  return {
    dryRun: opts.dryRun,
    graceMs: opts.graceMs,
    names: refs.names,
    configs: refs.configs,
    blobs: scan.blobs,
    dataObjects: scan.dataObjects,
    deleted,
    waiting,
    rescued,
    bytes,
  };
}

const plain = ({ kind, key, sha256, size, since, dueAt }: Dated): GcItem => ({ kind, key, sha256, size, since, dueAt });

/**
 * Data objects no record names, then every blob index: an unreferenced one is a candidate, and the data objects
 * it points at are not. Data is listed first so that an ingest finishing meanwhile (data, then index) is seen
 * indexed; memory holds only the data keys no record names (the garbage, mostly), not every object.
 */
async function findCandidates(store: ObjectStore, refs: References, marks: Marks) {
  const unnamed = new Set<string>();
  let dataObjects = 0;
  for await (const key of listAll(store, keys.dataPrefix)) {
    dataObjects++;
    if (!refs.dataKeys.has(key)) unnamed.add(key);
  }
  const candidates: Candidate[] = [];
  let blobs = 0;
  await inBatches(listAll(store, keys.blobsPrefix), async (key) => {
    const index = await readIndex(store, key);
    if (!index) return;
    blobs++;
    unnamed.delete(index.key);
    if (referencesBlob(refs, index.sha256)) return;
    candidates.push({ kind: 'blob', key, sha256: index.sha256, size: index.size, dataKey: index.key });
  });
  await inBatches(toAsync([...unnamed]), async (key) => {
    const meta = await store.head(key);
    if (meta) candidates.push({ kind: 'data', key, sha256: marks[key]?.sha256 ?? null, size: meta.size });
  });
  candidates.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { candidates, blobs, dataObjects };
}

interface BlobIndex {
  readonly sha256: string;
  readonly size: number;
  readonly key: string;
}

/** A blob index, or null when it is gone or not one (a foreign object under `blobs/` is neither read nor deleted). */
async function readIndex(store: ObjectStore, key: string): Promise<BlobIndex | null> {
  let raw: Partial<BlobIndex> | null;
  try {
    raw = await getJson<Partial<BlobIndex>>(store, key);
  } catch (err) {
    if (err instanceof SyntaxError) return null;
    throw err;
  }
  if (!raw || typeof raw.key !== 'string' || typeof raw.sha256 !== 'string' || !Number.isSafeInteger(raw.size))
    return null;
  if (keys.blob(raw.sha256) !== key) return null;
  return raw as BlobIndex;
}

async function readMarks(store: ObjectStore): Promise<Marks> {
  try {
    const raw = await getJson<{ marks?: unknown }>(store, keys.gcMarks);
    const marks = raw?.marks;
    return marks && typeof marks === 'object' ? (marks as Marks) : {};
  } catch (err) {
    // A damaged marks file only restarts every grace period: never a reason to delete sooner.
    if (err instanceof SyntaxError) return {};
    throw err;
  }
}

/** Marks of what still waits; the rest (deleted, or referenced again) is forgotten. Written only when it changed. */
async function writeMarks(store: ObjectStore, before: Marks, waiting: readonly GcItem[]): Promise<void> {
  const marks: Record<string, Mark> = {};
  for (const i of waiting)
    marks[i.key] = i.sha256 && i.kind === 'data' ? { since: i.since, sha256: i.sha256 } : { since: i.since };
  if (JSON.stringify(marks) === JSON.stringify(before)) return;
  await putJson(store, keys.gcMarks, { marks });
}

const iso = (ms: number) => new Date(ms).toISOString();

async function* toAsync<T>(items: readonly T[]): AsyncIterable<T> {
  yield* items;
}
