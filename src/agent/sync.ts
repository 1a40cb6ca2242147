/**
 * The edge agent: catalog -> verified version files -> link swaps -> GC. Two phases on purpose: every needed file is
 * downloaded and verified first, then all link renames happen back to back, so the kernel and initrd of one prefix
 * (separate names, DESIGN.md) switch within microseconds of each other instead of a download apart.
 */
import { mkdir, realpath, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, InputError, describe } from '../core/errors.js';
import type { Clock, HasherFactory, Logger } from '../core/ports.js';
import { sleep, systemClock } from '../core/ports.js';
import type { Catalog, CatalogEntry } from '../core/records.js';
import { classifyLink, ensureVersionFile, pathsOf, prepareLinkSwap } from './activate.js';
import type { LinkSwap } from './activate.js';
import { gcName } from './gc.js';
import type { EntryPaths } from './layout.js';
import { isWithin, tmpName } from './layout.js';
import { removeStaleTemps, rootProblems } from './root-check.js';
import { fsyncDir } from './safe-dirs.js';
import type { CatalogSource } from './source.js';

export interface AgentOptions {
  readonly source: CatalogSource;
  readonly root: string;
  /** Outside the root (the CLI defaults it to `<root>.state`): the root holds nothing but the layout. */
  readonly stateDir: string;
  readonly hasher: HasherFactory;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Parallel downloads. Default 4. */
  readonly concurrency?: number;
  /** Resumes per blob after transient read errors. Default 3. */
  readonly maxResumes?: number;
  readonly resumeDelayMs?: number;
}

export type NameOutcome =
  | { readonly name: string; readonly outcome: 'unchanged' | 'updated'; readonly version: string }
  | { readonly name: string; readonly outcome: 'failed'; readonly version: string | null; readonly message: string };

export interface SyncReport {
  /** The catalog had not changed and nothing needed retrying. */
  readonly notModified: boolean;
  readonly etag: string | null;
  /** No name failed. */
  readonly ok: boolean;
  readonly names: readonly NameOutcome[];
  readonly bytesDownloaded: number;
  readonly versionsRemoved: number;
  readonly durationMs: number;
}

export interface RunOptions {
  /** Minimum time between two catalog polls when nothing changed (a long-poll counts as waiting). */
  readonly intervalMs: number;
  readonly waitSeconds: number;
  readonly signal: AbortSignal;
}

export interface Agent {
  start(): Promise<void>;
  syncOnce(signal?: AbortSignal): Promise<SyncReport>;
  run(opts: RunOptions): Promise<void>;
  check(): Promise<{ ok: boolean; problems: string[] }>;
}

const MAX_BACKOFF_MS = 5 * 60_000;

export function createAgent(opts: AgentOptions): Agent {
  const root = resolve(opts.root);
  const stateDir = resolve(opts.stateDir);
  const { source, logger } = opts;
  const clock = opts.clock ?? systemClock;
  const concurrency = Math.max(1, opts.concurrency ?? 4);
  if (isWithin(root, stateDir)) {
    throw new ConfigError([
      `state-dir: ${stateDir} is inside the TFTP root ${root}; it must be outside (e.g. ${root}.state)`,
    ]);
  }

  let last: { catalog: Catalog; ok: boolean } | null = null;
  let queue: Promise<unknown> = Promise.resolve();
  // One sync at a time: two overlapping passes would race each other's renames and GC.
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queue.then(fn, fn);
    queue = p.catch(() => undefined);
    return p;
  };

  async function start(): Promise<void> {
    await mkdir(root, { recursive: true });
    await mkdir(stateDir, { recursive: true });
    // Lexical check again on real paths: `<root>.state` could be a symlink into the root.
    const [realRoot, realState] = await Promise.all([realpath(root), realpath(stateDir)]);
    if (isWithin(realRoot, realState)) {
      throw new ConfigError([`state-dir: ${stateDir} resolves to ${realState}, inside the TFTP root ${realRoot}`]);
    }
    const removed = (await removeStaleTemps(root, logger)) + (await removeStaleTemps(stateDir, logger));
    logger.info('agent: started', { root, stateDir, source: source.description, staleTempsRemoved: removed });
  }

  async function sync(waitSeconds: number | undefined, signal?: AbortSignal): Promise<SyncReport> {
    const t0 = clock.now();
    const got = await source.catalog(last?.catalog.etag ?? null, waitSeconds, signal);
    // Not modified: nothing to do, unless the last pass left failures worth retrying.
    if (got === 'not-modified' && (last === null || last.ok)) {
      const etag = last?.catalog.etag ?? null;
      return { notModified: true, etag, ok: true, names: [], bytesDownloaded: 0, versionsRemoved: 0, durationMs: 0 };
    }
    const catalog = got === 'not-modified' ? (last as { catalog: Catalog }).catalog : got;
    const applied = await apply(catalog.entries, signal);
    const ok = applied.names.every((n) => n.outcome !== 'failed');
    last = { catalog, ok };
    const report: SyncReport = { notModified: false, etag: catalog.etag, ok, ...applied, durationMs: clock.now() - t0 };
    await writeState(report).catch((err: unknown) =>
      logger.warn('agent: cannot write state', { error: describe(err) }),
    );
    return report;
  }

  async function apply(entries: readonly CatalogEntry[], signal?: AbortSignal) {
    const outcomes = new Map<string, NameOutcome>();
    const fail = (entry: CatalogEntry, err: unknown) => {
      const message = describe(err);
      outcomes.set(entry.name, { name: entry.name, outcome: 'failed', version: entry.version ?? null, message });
      logger.error('agent: name failed', { name: entry.name, version: entry.version, error: message });
    };

    // Validate everything first: an unsafe or refused name creates nothing at all, not even an -orig/ directory.
    const planned: { entry: CatalogEntry; paths: EntryPaths }[] = [];
    for (const entry of entries) {
      try {
        if (outcomes.has(entry.name)) throw new InputError('name', `${entry.name} appears twice in the catalog`);
        const paths = pathsOf(root, entry);
        await classifyLink(paths);
        planned.push({ entry, paths });
        outcomes.set(entry.name, { name: entry.name, outcome: 'unchanged', version: entry.version });
      } catch (err) {
        fail(entry, err);
      }
    }

    // Phase 1: every version file present and verified. A failure leaves that name's link (and old version) as is.
    let bytesDownloaded = 0;
    const ready = new Set<CatalogEntry>();
    await forEachLimit(planned, concurrency, async ({ entry }) => {
      try {
        const r = await ensureVersionFile({
          root,
          entry,
          source,
          hasher: opts.hasher,
          logger,
          ...resumeOpts(),
          ...sig(signal),
        });
        bytesDownloaded += r.downloaded;
        ready.add(entry);
        if (!r.reused)
          logger.info('agent: version downloaded', { name: entry.name, version: entry.version, bytes: r.downloaded });
      } catch (err) {
        fail(entry, err);
      }
    });
    signal?.throwIfAborted();

    // Phase 2: temporary links first, then the renames back to back, then one fsync per directory.
    const swaps: { entry: CatalogEntry; swap: LinkSwap }[] = [];
    for (const { entry, paths } of planned) {
      if (!ready.has(entry)) continue;
      try {
        swaps.push({ entry, swap: await prepareLinkSwap(root, paths) });
      } catch (err) {
        fail(entry, err);
      }
    }
    const changedDirs = new Set<string>();
    for (const { entry, swap } of swaps) {
      try {
        await swap.commit();
        if (swap.outcome === 'unchanged') continue;
        changedDirs.add(swap.dir);
        outcomes.set(entry.name, { name: entry.name, outcome: 'updated', version: entry.version });
        logger.info('agent: link swapped', { name: entry.name, version: entry.version, was: swap.outcome });
      } catch (err) {
        fail(entry, err);
      }
    }
    for (const dir of changedDirs) {
      await fsyncDir(dir).catch((err: unknown) => logger.warn('agent: fsync failed', { dir, error: describe(err) }));
    }

    // Phase 3: GC. Its failures are logged, not reported per name: the name itself is serving fine.
    let versionsRemoved = 0;
    for (const { entry } of planned) {
      try {
        versionsRemoved += (await gcName(root, entry, logger)).length;
      } catch (err) {
        logger.warn('agent: gc failed', { name: entry.name, error: describe(err) });
      }
    }
    return {
      names: entries.map((e) => outcomes.get(e.name)).filter((o) => o !== undefined),
      bytesDownloaded,
      versionsRemoved,
    };
  }

  function resumeOpts(): { maxResumes?: number; resumeDelayMs?: number } {
    return {
      ...(opts.maxResumes !== undefined ? { maxResumes: opts.maxResumes } : {}),
      ...(opts.resumeDelayMs !== undefined ? { resumeDelayMs: opts.resumeDelayMs } : {}),
    };
  }

  /** Last pass summary for operators and monitoring, written atomically outside the root. */
  async function writeState(report: SyncReport): Promise<void> {
    const { names, ...summary } = report;
    const failed = names.filter((n) => n.outcome === 'failed');
    const body = { at: new Date(clock.now()).toISOString(), source: source.description, ...summary, failed };
    const tmp = join(stateDir, tmpName());
    await writeFile(tmp, JSON.stringify(body, null, 2) + '\n');
    await rename(tmp, join(stateDir, 'agent-last-sync.json'));
  }

  async function run({ intervalMs, waitSeconds, signal }: RunOptions): Promise<void> {
    // Consecutive passes that threw or left a name failed: retries back off, so a corrupt blob is not re-downloaded
    // every interval, and jitter keeps a fleet of edges from retrying in lockstep.
    let failures = 0;
    const backoff = () =>
      Math.round(Math.min(intervalMs * 2 ** Math.min(failures, 10), MAX_BACKOFF_MS) * (0.5 + Math.random() / 2));
    while (!signal.aborted) {
      const t0 = clock.now();
      try {
        const report = await serial(() => sync(waitSeconds, signal));
        failures = report.ok ? 0 : failures + 1;
        const retryInMs = report.ok ? 0 : backoff();
        if (!report.notModified) {
          const count = (o: NameOutcome['outcome']) => report.names.filter((n) => n.outcome === o).length;
          const fields = {
            etag: report.etag,
            updated: count('updated'),
            failed: count('failed'),
            bytes: report.bytesDownloaded,
            ms: report.durationMs,
          };
          if (report.ok) logger.info('agent: sync done', fields);
          else logger.warn('agent: sync done with failures', { ...fields, retryInMs });
        }
        // A change is applied and polled again at once; an unchanged catalog is polled at most every intervalMs (a
        // long-poll that waited already counts).
        if (!report.ok) await sleep(retryInMs, signal);
        else if (report.notModified) await sleep(Math.max(0, intervalMs - (clock.now() - t0)), signal);
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        const retryInMs = backoff();
        logger.warn('agent: sync failed', { error: describe(err), failures, retryInMs });
        await sleep(retryInMs, signal);
      }
    }
  }

  async function check(): Promise<{ ok: boolean; problems: string[] }> {
    const known = last?.catalog ?? null;
    const got = await source.catalog(known?.etag ?? null);
    // Only sync() updates `last`: a catalog that check() saw but nobody applied must not look "not modified" later.
    const catalog = got === 'not-modified' && known !== null ? known : (got as Catalog);
    const problems = await rootProblems(root, catalog.entries);
    return { ok: problems.length === 0, problems };
  }

  return {
    start,
    syncOnce: (signal) => serial(() => sync(undefined, signal)),
    run,
    check: () => serial(check),
  };
}

function sig(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}

async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
