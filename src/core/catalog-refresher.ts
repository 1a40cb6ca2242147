import { refreshCatalogSnapshot, type SnapshotRefresh } from './catalog.js';
import { describe } from './errors.js';
import type { Clock, Logger } from './ports.js';
import type { ObjectStore } from '../storage/object-store.js';

/**
 * Keeps `catalog.json` (core/catalog.ts) close to the change log, so an agent's first sync reads one object instead
 * of every name. Refreshes run one at a time, off the publish path; a failed one is logged and retried at the next
 * publication (readers then apply a longer log, or read every name: slower, never wrong).
 */
export interface CatalogRefresher {
  /** This process published: refresh within `delayMs` (a burst of publications costs one refresh). */
  touch(): void;
  /** Refresh now if touched since the last one, from the stored snapshot only (shutdown, one-shot CLI). */
  flush(): Promise<void>;
  /**
   * A refresh now from the stored snapshot, or by reading every name when there is no usable one (a fetcher
   * starting on a store written before snapshots existed, or one far behind).
   */
  refresh(): Promise<void>;
  /** Reads every name again (the periodic safety net: it announces publications whose change event was lost). */
  full(): Promise<void>;
}

type Mode = 'flush' | 'refresh' | 'full';

export function createCatalogRefresher(opts: {
  readonly store: ObjectStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly delayMs: number;
}): CatalogRefresher {
  let touched = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let queue: Promise<void> = Promise.resolve();

  async function once(mode: Mode): Promise<void> {
    if (mode === 'flush' && !touched) return;
    touched = false;
    const at = new Date(opts.clock.now()).toISOString();
    try {
      let result: SnapshotRefresh = await refreshCatalogSnapshot(opts.store, { full: mode === 'full', at });
      if (result === 'unusable' && mode === 'refresh')
        result = await refreshCatalogSnapshot(opts.store, { full: true, at });
      opts.logger.debug('catalog snapshot refreshed', { mode, result });
    } catch (err) {
      touched = true;
      opts.logger.warn('catalog snapshot refresh failed; retried after the next publication', {
        mode,
        error: describe(err),
      });
    }
  }
  const run = (mode: Mode) => (queue = queue.then(() => once(mode)));
  const cancelTimer = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };

  return {
    touch() {
      touched = true;
      timer ??= setTimeout(() => {
        timer = null;
        void run('refresh');
      }, opts.delayMs);
    },
    flush() {
      cancelTimer();
      return run('flush');
    },
    refresh: () => run('refresh'),
    full: () => run('full'),
  };
}
