import { keys } from './object-keys.js';
import { latestPointer } from './pointers.js';
import type { HasherFactory } from './ports.js';
import type { Catalog, CatalogEntry, PointerRecord } from './records.js';
import { listAll, type ObjectStore } from '../storage/object-store.js';

/**
 * Every published name with its current version: what agents consume. The ETag is a hash of the entries, so it is
 * the same whichever fetcher instance computes it and changes exactly when a pointer moves.
 */
export async function readCatalog(store: ObjectStore, hasher: HasherFactory): Promise<Catalog> {
  const names: string[] = [];
  for await (const key of listAll(store, keys.headsPrefix)) {
    if (key.endsWith('.json')) names.push(keys.nameFromHead(key));
  }
  const entries: CatalogEntry[] = [];
  const concurrency = 16;
  for (let i = 0; i < names.length; i += concurrency) {
    const batch = await Promise.all(names.slice(i, i + concurrency).map((n) => latestPointer(store, n)));
    for (const record of batch) if (record) entries.push(toEntry(record));
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const h = hasher();
  for (const e of entries) h.update(new TextEncoder().encode(`${e.name}\u0000${e.generation}\u0000${e.sha256}\n`));
  return { etag: `"${h.digest().slice(0, 32)}"`, entries };
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
