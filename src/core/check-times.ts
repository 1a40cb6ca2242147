import { keys } from './object-keys.js';
import type { Logger } from './ports.js';
import { describe } from './errors.js';
import type { FileStatus, StatusRecord } from './records.js';
import { getJson, putJson, type ObjectStore } from '../storage/object-store.js';

/**
 * `checkedAt` of revalidations that found upstream unchanged (304), written in batches: one status write per name per
 * `delayMs` instead of one per request (a durable write per request caps the 304 path near 1,300 requests/s on the
 * file store here). Until written, this process's answers show the pending time. A pending time is dropped when a
 * job of this process writes the name's status itself (its record is newer), and is written only over the record it
 * was checked against (same job, still `ready`). Another process writing the record between this read and write can
 * lose at most that `checkedAt`: status records are last-writer-wins and advisory; publication never depends on them.
 */
export interface CheckTimes {
  /**
   * A lease-free revalidation of `name` starts in this process: until the returned function is called, `overlay`
   * shows a ready name as `fetching` (the check may turn into a re-fetch), so a caller polling the status after its
   * 200 never takes the old state for the end of its call.
   */
  begin(name: string): () => void;
  record(name: string, checkedAgainst: StatusRecord, checkedAt: string): void;
  /** A job of this process is about to write `name`'s status: its record supersedes any pending time. */
  forget(name: string): void;
  /** The status as this process knows it: pending check times and checks in flight on top of the store's. */
  overlay(status: FileStatus): FileStatus;
  /** Writes everything pending now (shutdown, one-shot CLI). */
  flush(): Promise<void>;
}

export function createCheckTimes(store: ObjectStore, logger: Logger, delayMs: number): CheckTimes {
  const pending = new Map<string, { jobId: string; checkedAt: string }>();
  const checking = new Map<string, number>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let flushing: Promise<void> = Promise.resolve();

  async function write(name: string, jobId: string, checkedAt: string): Promise<void> {
    const record = await getJson<StatusRecord>(store, keys.status(name));
    if (!record || record.jobId !== jobId || record.state !== 'ready') return;
    if (record.checkedAt !== null && record.checkedAt >= checkedAt) return;
    await putJson(store, keys.status(name), { ...record, checkedAt });
  }

  function flush(): Promise<void> {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    const batch = [...pending];
    pending.clear();
    flushing = flushing.then(async () => {
      const results = await Promise.allSettled(batch.map(([name, p]) => write(name, p.jobId, p.checkedAt)));
      results.forEach((r, i) => {
        if (r.status === 'rejected')
          logger.warn('recording a revalidation time failed', { name: batch[i]?.[0], err: describe(r.reason) });
      });
    });
    return flushing;
  }

  return {
    begin(name) {
      checking.set(name, (checking.get(name) ?? 0) + 1);
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        const left = (checking.get(name) ?? 1) - 1;
        if (left > 0) checking.set(name, left);
        else checking.delete(name);
      };
    },
    record(name, checkedAgainst, checkedAt) {
      const known = pending.get(name);
      if (known && known.jobId === checkedAgainst.jobId && known.checkedAt >= checkedAt) return;
      pending.set(name, { jobId: checkedAgainst.jobId, checkedAt });
      timer ??= setTimeout(() => void flush(), delayMs);
    },
    forget(name) {
      pending.delete(name);
    },
    overlay(status) {
      const known = pending.get(status.name);
      const shown =
        !known || (status.checkedAt !== null && status.checkedAt >= known.checkedAt)
          ? status
          : { ...status, checkedAt: known.checkedAt };
      return checking.has(status.name) && shown.state === 'ready'
        ? { ...shown, state: 'fetching', error: null }
        : shown;
    },
    flush,
  };
}
