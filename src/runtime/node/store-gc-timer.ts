import type { Logger } from '../../core/ports.js';
import { systemClock } from '../../core/ports.js';
import { collectGarbage } from '../../core/store-gc.js';
import type { ObjectStore } from '../../storage/object-store.js';

/** The first run waits this long after start (or the interval, if shorter): a restart loop never hammers the store. */
const FIRST_RUN_MS = 10 * 60 * 1000;

/**
 * `serve --gc-interval`: the store GC of `pxecache gc` on a timer, one run at a time. Several fetchers sharing a store
 * may each run it: marks are last-writer-wins and deletions idempotent, so two runs only cost reads. Unref'd: it
 * never keeps the process alive; `stop` waits for a run in progress.
 */
export function startStoreGc(opts: {
  readonly store: ObjectStore;
  readonly intervalSeconds: number;
  readonly graceSeconds: number;
  readonly logger: Logger;
}): { stop(): Promise<void> } {
  const { store, logger } = opts;
  if (opts.intervalSeconds === 0) return { stop: async () => undefined };
  const intervalMs = opts.intervalSeconds * 1000;
  let running: Promise<void> | null = null;
  let stopped = false;
  const run = () => {
    if (running || stopped) return;
    const started = systemClock.now();
    running = collectGarbage(store, { graceMs: opts.graceSeconds * 1000, dryRun: false, clock: systemClock })
      .then((r) =>
        logger.info('store gc', {
          deleted: r.deleted.length,
          bytes: r.bytes,
          waiting: r.waiting.length,
          rescued: r.rescued,
          names: r.names,
          durationMs: systemClock.now() - started,
        }),
      )
      .catch((err: unknown) => logger.warn('store gc failed; retried at the next interval', { error: String(err) }))
      .finally(() => {
        running = null;
      });
  };
  const first = setTimeout(
    () => {
      run();
      timer.refresh();
    },
    Math.min(FIRST_RUN_MS, intervalMs),
  );
  const timer = setInterval(run, intervalMs);
  first.unref();
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearTimeout(first);
      clearInterval(timer);
      await running;
    },
  };
}
