import { formatCursor, verifiedCursor } from './events.js';
import { keys } from './object-keys.js';
import { latestPointer } from './pointers.js';
import type { Catalog, CatalogEntry, PointerRecord } from './records.js';
import { listAll, type ObjectStore } from '../storage/object-store.js';

const CONCURRENCY = 16;

/** The ETag of every document derived from the change log at `cursor`: the same on every fetcher instance. */
export const cursorEtag = (cursor: string): string => `"${cursor}"`;

/**
 * Every published name with its current version: the full snapshot agents start from (GET /api/v1/files). The
 * cursor is read *before* the names, so the entries are at least as new as the cursor says and a change made
 * while they are read is delivered again after it.
 */
export async function readCatalog(store: ObjectStore): Promise<Catalog> {
  const cursor = formatCursor(await verifiedCursor(store));
  const names: string[] = [];
  for await (const key of listAll(store, keys.headsPrefix)) {
    if (keys.isHead(key)) names.push(keys.nameFromHead(key));
  }
  return { cursor, etag: cursorEtag(cursor), entries: await readEntries(store, names) };
}

/** The current entry of each of `names` (sorted by name; names never published are left out). */
export async function readEntries(store: ObjectStore, names: readonly string[]): Promise<CatalogEntry[]> {
  const entries: CatalogEntry[] = [];
  for (let i = 0; i < names.length; i += CONCURRENCY) {
    const batch = await Promise.all(names.slice(i, i + CONCURRENCY).map((n) => latestPointer(store, n)));
    for (const record of batch) if (record) entries.push(toEntry(record));
  }
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

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
