import { readCatalog } from '../core/catalog.js';
import { StorageError } from '../core/errors.js';
import type { HasherFactory } from '../core/ports.js';
import { sleep } from '../core/ports.js';
import type { CatalogEntry } from '../core/records.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { CatalogSource } from './source.js';

/**
 * An agent reading the store directly (same machine, or read-only credentials to a shared bucket): no fetcher in
 * the path. Long-polls by re-reading the catalog every `pollMs`, or sooner when `wake` resolves (in-process agent).
 */
export function createStoreSource(opts: {
  store: ObjectStore;
  description: string;
  hasher: HasherFactory;
  pollMs: number;
  wake?: (signal: AbortSignal) => Promise<void>;
}): CatalogSource {
  return {
    description: opts.description,
    async catalog(etag, waitSeconds = 0, signal) {
      const deadline = Date.now() + waitSeconds * 1000;
      for (;;) {
        const catalog = await readCatalog(opts.store, opts.hasher);
        if (catalog.etag !== etag) return catalog;
        const left = deadline - Date.now();
        if (left <= 0 || signal?.aborted) return 'not-modified';
        const stop = new AbortController();
        const onAbort = () => stop.abort();
        signal?.addEventListener('abort', onAbort, { once: true });
        await Promise.race([sleep(Math.min(left, opts.pollMs), stop.signal), opts.wake?.(stop.signal)]);
        stop.abort();
        signal?.removeEventListener('abort', onAbort);
      }
    },
    async openBlob(entry: CatalogEntry, offset: number) {
      const object = await opts.store.get(entry.key, offset > 0 ? { offset } : undefined);
      if (!object) throw new StorageError(opts.store.driver, 'GET', entry.key, 'version bytes missing from the store');
      return object.body;
    },
  };
}
