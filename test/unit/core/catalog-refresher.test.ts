/**
 * The refresher behind `catalog.json`: a burst of publications costs one refresh, a flush with nothing new costs
 * nothing, and a failed refresh is logged and done again after the next publication.
 */
import { describe, expect, it } from 'vitest';
import { createCatalogRefresher } from '../../../src/core/catalog-refresher.js';
import { appendChanges } from '../../../src/core/events.js';
import { keys } from '../../../src/core/object-keys.js';
import { systemClock, silentLogger, type Logger } from '../../../src/core/ports.js';
import { createMemoryStore } from '../../../src/storage/memory-store.js';
import { getJson, type ObjectStore } from '../../../src/storage/object-store.js';
import { countingStore } from '../../helpers/counting-store.js';

const snapshotPuts = (calls: readonly { op: string; key: string }[]) =>
  calls.filter((c) => c.op === 'put' && c.key === keys.catalogSnapshot).length;

describe('catalog refresher', () => {
  it('coalesces touches into one refresh, and flushes only when touched', async () => {
    const counted = countingStore(createMemoryStore());
    const refresher = createCatalogRefresher({
      store: counted.store,
      clock: systemClock,
      logger: silentLogger,
      delayMs: 60_000,
    });
    await refresher.refresh();
    expect(snapshotPuts(counted.calls)).toBe(1);
    counted.reset();
    await refresher.flush();
    expect(counted.count()).toBe(0);
    for (let i = 0; i < 5; i++) refresher.touch();
    await refresher.flush();
    // Nothing was published in this store, so the stored snapshot is current: read, not written.
    expect(counted.count('get')).toBeGreaterThan(0);
    expect(snapshotPuts(counted.calls)).toBe(0);
    counted.reset();
    await refresher.flush();
    expect(counted.count()).toBe(0);
  });

  it('logs a failed refresh and tries again at the next flush, without a new touch', async () => {
    const inner = createMemoryStore();
    let failPuts = 0;
    const store: ObjectStore = {
      ...inner,
      put: (key, body, options) => {
        // The only fault injected here: a store write refused (S3 503 and the like).
        if (key === keys.catalogSnapshot && failPuts-- > 0) return Promise.reject(new Error('503 SlowDown'));
        return inner.put(key, body, options);
      },
    };
    const warnings: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (msg) => void warnings.push(msg) };
    const refresher = createCatalogRefresher({ store, clock: systemClock, logger, delayMs: 60_000 });
    await refresher.full();
    const seqOf = async () => (await getJson<{ seq: number }>(inner, keys.catalogSnapshot))?.seq;
    expect(await seqOf()).toBe(0);

    await appendChanges(store, [{ kind: 'file', name: 'boot/x-vmlinuz' }], new Date(0).toISOString());
    failPuts = 1;
    refresher.touch();
    await refresher.flush();
    expect(warnings).toEqual(['catalog snapshot refresh failed; retried after the next publication']);
    expect(await seqOf()).toBe(0);
    await refresher.flush();
    expect(await seqOf()).toBe(1);
  });
});
