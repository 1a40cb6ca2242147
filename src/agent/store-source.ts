import { waitForChanges } from '../core/change-feed.js';
import { createHeadWatch } from '../core/changes.js';
import { StorageError } from '../core/errors.js';
import { systemClock } from '../core/ports.js';
import type { FileStatus } from '../core/records.js';
import { writeSiteReport } from '../core/site-reports.js';
import { readStatus } from '../core/status.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { BlobRef, CatalogSource } from './source.js';

/**
 * An agent reading the store directly (same machine, or read-only credentials to a shared bucket): no fetcher in
 * the path. It reads the change log itself (core/change-feed.ts): an idle poll is the head hint and one probe, a
 * change costs reads of what changed. Long-polls by looking again every `pollMs`, or sooner when `wake` resolves
 * (in-process agent). Every site is known here: a site nobody wrote configs for simply has none.
 */
export function createStoreSource(opts: {
  store: ObjectStore;
  description: string;
  pollMs: number;
  wake?: (signal: AbortSignal) => Promise<void>;
  /**
   * A name's status when the agent shares a process with the fetcher (in-process agent): the fetcher's answer also
   * knows the revalidations it has started but not yet recorded in the store. Default: readStatus on the store.
   */
  status?: (name: string) => Promise<FileStatus | null>;
}): CatalogSource {
  const watch = createHeadWatch({ store: opts.store, pollMs: opts.pollMs, ...(opts.wake ? { wake: opts.wake } : {}) });

  return {
    description: opts.description,
    async changes(site, since, waitSeconds = 0, signal) {
      const waitMs = Math.max(0, waitSeconds) * 1000;
      const got = await waitForChanges(
        { store: opts.store, watch, clock: systemClock, waitMs, ...(signal ? { signal } : {}) },
        { since, site },
      );
      return got === 'unchanged' ? 'not-modified' : got;
    },
    async openBlob(blob: BlobRef, offset: number) {
      const object = await opts.store.get(blob.key, offset > 0 ? { offset } : undefined);
      if (!object) throw new StorageError(opts.store.driver, 'GET', blob.key, 'version bytes missing from the store');
      return object.body;
    },
    async fileState(name) {
      const status = await (opts.status ? opts.status(name) : readStatus(opts.store, systemClock, name));
      return status ? { state: status.state, version: status.version } : null;
    },
    report: (report) => writeSiteReport(opts.store, report),
  };
}
