import { collectChanges, formatCursor, verifiedCursor } from './events.js';
import { keys } from './object-keys.js';
import { healedPointer, latestPointer } from './pointers.js';
import type { Catalog, CatalogEntry, PointerRecord } from './records.js';
import { getJson, listAll, putJson, type ObjectStore } from '../storage/object-store.js';

const CONCURRENCY = 16;
/** A snapshot this far behind still beats reading every name: one GET per event against two per name. */
const MIN_DELTA_EVENTS = 64;

/** The ETag of every document derived from the change log at `cursor`: the same on every fetcher instance. */
export const cursorEtag = (cursor: string): string => `"${cursor}"`;

/**
 * Every published name at change-log position `seq` (entries at least as new). Stored as `catalog.json` by
 * `refreshCatalogSnapshot`, last writer wins: an older snapshot overwriting a newer one only lengthens the delta the
 * next reader applies, so several fetchers may write it.
 */
interface CatalogSnapshot {
  readonly seq: number;
  readonly entries: readonly CatalogEntry[];
}

/**
 * Every published name with its current version: the full snapshot agents start from (GET /api/v1/files). The
 * cursor is read *before* the names, so the entries are at least as new as the cursor says and a change made
 * while they are read is delivered again after it. With a usable `catalog.json` this costs one GET plus the change
 * log after it, instead of a LIST and two GETs per name.
 */
export async function readCatalog(store: ObjectStore): Promise<Catalog> {
  return buildCatalog(store);
}

export type SnapshotRefresh = 'written' | 'current' | 'unusable';

/**
 * Brings `catalog.json` up to date (a fetcher calls this after publishing, off the publish path).
 * - `full: false`: the stored snapshot plus the change log after it; `unusable` when there is none that the log can
 *   bring up to date cheaply (then a full refresh is the way), `current` when nothing changed since it.
 * - `full: true`: every name read again, through `healedPointer`, so a publication whose change event was never
 *   written (its publisher stopped in between) is announced now and reaches agents that follow the log.
 */
export async function refreshCatalogSnapshot(
  store: ObjectStore,
  opts: { readonly full: boolean; readonly at: string },
): Promise<SnapshotRefresh> {
  let next: CatalogSnapshot;
  if (opts.full) {
    const seq = await verifiedCursor(store);
    next = { seq, entries: await readEntries(store, await publishedNames(store), opts.at) };
  } else {
    const snapshot = await readSnapshot(store);
    const updated = snapshot && (await applyLog(store, snapshot, await verifiedCursor(store)));
    if (!updated) return 'unusable';
    if (updated.seq === snapshot.seq) return 'current';
    next = updated;
  }
  await putJson(store, keys.catalogSnapshot, next);
  return 'written';
}

async function buildCatalog(store: ObjectStore): Promise<Catalog> {
  // The snapshot first: read after the head, a snapshot written in between would look ahead of the log.
  const snapshot = await readSnapshot(store);
  const head = await verifiedCursor(store);
  const updated = snapshot && (await applyLog(store, snapshot, head));
  const seq = updated ? updated.seq : head;
  const entries = updated ? updated.entries : await readEntries(store, await publishedNames(store));
  const cursor = formatCursor(seq);
  return { cursor, etag: cursorEtag(cursor), entries };
}

/** `snapshot` brought up to date with the change log after it; null when the log cannot bring it there cheaply. */
async function applyLog(store: ObjectStore, snapshot: CatalogSnapshot, head: number): Promise<CatalogSnapshot | null> {
  // Ahead of the log: written against another one (a store emptied and refilled). Far behind: reading is cheaper.
  if (snapshot.seq > head || head - snapshot.seq > Math.max(MIN_DELTA_EVENTS, snapshot.entries.length)) return null;
  const delta = await collectChanges(store, snapshot.seq);
  if (delta === null) return null;
  const changed = new Set<string>();
  for (const change of delta.changes) if (change.kind === 'file') changed.add(change.name);
  const byName = new Map(snapshot.entries.map((e) => [e.name, e]));
  // Re-read after the log: at least as new as its last event. A name no longer published drops out.
  for (const name of changed) byName.delete(name);
  for (const entry of await readEntries(store, [...changed])) byName.set(entry.name, entry);
  return { seq: delta.cursor, entries: sortByName([...byName.values()]) };
}

/** The stored snapshot, or null when there is none or it is not one (a foreign or damaged object is not trusted). */
async function readSnapshot(store: ObjectStore): Promise<CatalogSnapshot | null> {
  let raw: unknown;
  try {
    raw = await getJson<unknown>(store, keys.catalogSnapshot);
  } catch (err) {
    if (err instanceof SyntaxError) return null;
    throw err;
  }
  const s = raw as Partial<CatalogSnapshot> | null;
  if (!s || !Number.isSafeInteger(s.seq) || (s.seq as number) < 0 || !Array.isArray(s.entries)) return null;
  return s.entries.every(isEntry) ? (s as CatalogSnapshot) : null;
}

function isEntry(e: unknown): e is CatalogEntry {
  const x = e as Partial<CatalogEntry> | null;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.name === 'string' &&
    typeof x.sha256 === 'string' &&
    typeof x.key === 'string' &&
    typeof x.version === 'string' &&
    Number.isSafeInteger(x.size) &&
    Number.isSafeInteger(x.generation) &&
    Array.isArray(x.versions)
  );
}

/** Every name with a head record (published at least once), in key order. */
export async function publishedNames(store: ObjectStore): Promise<string[]> {
  const names: string[] = [];
  for await (const key of listAll(store, keys.headsPrefix)) {
    if (keys.isHead(key)) names.push(keys.nameFromHead(key));
  }
  return names;
}

/**
 * The current entry of each of `names` (sorted by name; names never published are left out). With `healAt`, each is
 * read through `healedPointer` (which may append a missing change event, dated `healAt`).
 */
export async function readEntries(
  store: ObjectStore,
  names: readonly string[],
  healAt?: string,
): Promise<CatalogEntry[]> {
  const read = (n: string) => (healAt === undefined ? latestPointer(store, n) : healedPointer(store, n, healAt));
  const entries: CatalogEntry[] = [];
  for (let i = 0; i < names.length; i += CONCURRENCY) {
    const batch = await Promise.all(names.slice(i, i + CONCURRENCY).map(read));
    for (const record of batch) if (record) entries.push(toEntry(record));
  }
  return sortByName(entries);
}

const sortByName = (entries: CatalogEntry[]) =>
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

export function toEntry(r: PointerRecord): CatalogEntry {
  return {
    name: r.name,
    generation: r.generation,
    version: r.version,
    sha256: r.sha256,
    size: r.size,
    basename: r.basename,
    url: r.url,
    fetchedAt: r.fetchedAt,
    key: r.key,
    versions: r.versions.map((v) => v.version),
  };
}
