import { createBootConfigs } from '../core/boot-configs.js';
import { readCatalog } from '../core/catalog.js';
import { StorageError } from '../core/errors.js';
import type { HasherFactory } from '../core/ports.js';
import { sleep, systemClock } from '../core/ports.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { BlobRef, CatalogSource } from './source.js';

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
  // Only catalog() is used, which never writes: newId is never called.
  const configs = createBootConfigs({ store: opts.store, hasher: opts.hasher, clock: systemClock, newId: () => '' });

  async function poll<T extends { etag: string }>(
    read: () => Promise<T>,
    etag: string | null,
    waitSeconds: number,
    signal: AbortSignal | undefined,
  ): Promise<T | 'not-modified'> {
    const deadline = Date.now() + waitSeconds * 1000;
    for (;;) {
      const doc = await read();
      if (doc.etag !== etag) return doc;
      const left = deadline - Date.now();
      if (left <= 0 || signal?.aborted) return 'not-modified';
      const stop = new AbortController();
      const onAbort = () => stop.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      await Promise.race([sleep(Math.min(left, opts.pollMs), stop.signal), opts.wake?.(stop.signal)]);
      stop.abort();
      signal?.removeEventListener('abort', onAbort);
    }
  }

  return {
    description: opts.description,
    catalog: (etag, waitSeconds = 0, signal) =>
      poll(() => readCatalog(opts.store, opts.hasher), etag, waitSeconds, signal),
    configs: (site, etag, waitSeconds = 0, signal) => poll(() => configs.catalog(site), etag, waitSeconds, signal),
    async openBlob(blob: BlobRef, offset: number) {
      const object = await opts.store.get(blob.key, offset > 0 ? { offset } : undefined);
      if (!object) throw new StorageError(opts.store.driver, 'GET', blob.key, 'version bytes missing from the store');
      return object.body;
    },
  };
}
