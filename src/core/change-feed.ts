import { listConfigEntries, readConfigEntries } from './boot-configs.js';
import { readCatalog, readEntries } from './catalog.js';
import type { HeadWatch } from './changes.js';
import { collectChanges, currentCursor, formatCursor, parseCursor } from './events.js';
import type { Clock } from './ports.js';
import type { Changes } from './records.js';
import type { ObjectStore } from '../storage/object-store.js';

/**
 * What agents consume (GET /api/v1/changes, and agents reading the store directly): the changes after a cursor,
 * O(changes) store operations, or a full snapshot. Nothing changed costs the head hint and one probe.
 */

export interface ChangesQuery {
  /** The reader's cursor; `null` (or one that is not ours) asks for a full snapshot. */
  readonly since: string | null;
  /** Whose configs to include; `null`: boot files only. */
  readonly site: string | null;
}

export async function readChanges(store: ObjectStore, query: ChangesQuery): Promise<Changes | 'unchanged'> {
  const since = query.since === null ? null : parseCursor(query.since);
  if (since === null) return snapshot(store, query.site);
  const head = await currentCursor(store, since);
  if (head === since) return 'unchanged';
  // Below the reader's cursor: that cursor is not in this log (compacted away, or from another store).
  if (head < since) return snapshot(store, query.site);
  const delta = await collectChanges(store, since);
  if (delta === null) return snapshot(store, query.site);
  const names = new Set<string>();
  const paths = new Set<string>();
  for (const change of delta.changes) {
    if (change.kind === 'file') names.add(change.name);
    else if (change.site === query.site) paths.add(change.path);
  }
  const [files, configs] = await Promise.all([
    readEntries(store, [...names]),
    query.site === null ? [] : readConfigEntries(store, query.site, [...paths]),
  ]);
  return { cursor: formatCursor(delta.cursor), complete: false, site: query.site, files, configs };
}

async function snapshot(store: ObjectStore, site: string | null): Promise<Changes> {
  const catalog = await readCatalog(store);
  // Configs listed after the catalog's cursor was read: newer is fine (a change after the cursor is sent again).
  const configs = site === null ? [] : await listConfigEntries(store, site);
  return { cursor: catalog.cursor, complete: true, site, files: catalog.entries, configs };
}

export interface WaitOptions {
  readonly store: ObjectStore;
  readonly watch: HeadWatch;
  readonly clock: Clock;
  readonly waitMs: number;
  readonly signal?: AbortSignal;
}

/**
 * `readChanges`, held up to `waitMs` while nothing changed (long-poll). Changes that concern nobody here (another
 * site's configs) do not end the wait; if the wait ends with only those, the answer is an empty delta with the
 * advanced cursor, so the reader does not scan them again.
 */
export async function waitForChanges(opts: WaitOptions, query: ChangesQuery): Promise<Changes | 'unchanged'> {
  const deadline = opts.clock.now() + opts.waitMs;
  let since = query.since;
  for (;;) {
    const got = await readChanges(opts.store, { since, site: query.site });
    if (got !== 'unchanged') {
      if (got.complete || got.files.length > 0 || got.configs.length > 0) return got;
      since = got.cursor;
    }
    const left = deadline - opts.clock.now();
    if (left <= 0 || opts.signal?.aborted) {
      if (since === query.since) return 'unchanged';
      return { cursor: since as string, complete: false, site: query.site, files: [], configs: [] };
    }
    await opts.watch.next(parseCursor(since as string) ?? 0, left, opts.signal);
  }
}

/**
 * For documents whose ETag is the cursor (GET /api/v1/files, /sites/<site>/configs): resolves with the new cursor
 * once the log moved past `known`, or 'unchanged' after `waitMs`. O(1) store operations per look.
 */
export async function waitForCursor(opts: WaitOptions, known: number): Promise<number | 'unchanged'> {
  const deadline = opts.clock.now() + opts.waitMs;
  for (;;) {
    const head = await currentCursor(opts.store, known);
    if (head !== known) return head;
    const left = deadline - opts.clock.now();
    if (left <= 0 || opts.signal?.aborted) return 'unchanged';
    await opts.watch.next(known, left, opts.signal);
  }
}
