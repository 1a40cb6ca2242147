/**
 * The boot files of one sync pass: catalog entries -> verified version files -> link swaps -> GC. Two phases on
 * purpose: every needed file is downloaded and verified first, then the link renames happen back to back, set by set
 * (agent/set-swaps.ts), so the kernel and initrd of one prefix (separate names, DESIGN.md) switch within microseconds
 * of each other instead of a download apart. A set whose other members are still being fetched waits (set-hold.ts).
 */
import { InputError, describe } from '../core/errors.js';
import type { HasherFactory, Logger, TransferProgress } from '../core/ports.js';
import type { CatalogEntry } from '../core/records.js';
import { classifyLink, ensureVersionFile, pathsOf, prepareLinkSwap } from './activate.js';
import { gcName } from './gc.js';
import type { EntryPaths } from './layout.js';
import { DirSyncs, fsyncDir } from './safe-dirs.js';
import type { SetHold } from './set-hold.js';
import type { SetSwap } from './set-swap-metrics.js';
import { commitBySet, type PreparedSwap } from './set-swaps.js';
import type { CatalogSource } from './source.js';

export interface BootFilesOptions {
  readonly root: string;
  readonly source: CatalogSource;
  readonly hasher: HasherFactory;
  readonly logger: Logger;
  /** Parallel downloads. Default 8. */
  readonly concurrency?: number;
  /** Resumes per blob after transient read errors. Default 3. */
  readonly maxResumes?: number;
  readonly resumeDelayMs?: number;
  /** Which respin sets wait for a later pass (agent/set-hold.ts); absent: none. */
  readonly holdSets?: SetHold['decide'];
  /** Each download's bytes as they arrive (activate.ts). */
  readonly onProgress?: TransferProgress;
}

export type NameOutcome =
  | { readonly name: string; readonly outcome: 'unchanged' | 'updated' | 'held'; readonly version: string }
  | { readonly name: string; readonly outcome: 'failed'; readonly version: string | null; readonly message: string };

export interface BootFilesResult {
  readonly names: readonly NameOutcome[];
  readonly bytesDownloaded: number;
  readonly versionsRemoved: number;
  /** The respin sets whose links moved, each with its rename window. */
  readonly setSwaps: readonly SetSwap[];
}

export async function applyBootFiles(
  opts: BootFilesOptions,
  entries: readonly CatalogEntry[],
  signal?: AbortSignal,
): Promise<BootFilesResult> {
  const { root, source, logger } = opts;
  const concurrency = Math.max(1, opts.concurrency ?? 8);
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
  const downloaded: CatalogEntry[] = [];
  const syncs = new DirSyncs();
  await forEachLimit(planned, concurrency, async ({ entry }) => {
    try {
      const r = await ensureVersionFile({
        root,
        entry,
        source,
        hasher: opts.hasher,
        logger,
        syncs,
        ...resumeOpts(opts),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        ...sig(signal),
      });
      bytesDownloaded += r.downloaded;
      ready.add(entry);
      if (!r.reused) downloaded.push(entry);
      if (!r.reused)
        logger.info('agent: version downloaded', { name: entry.name, version: entry.version, bytes: r.downloaded });
    } catch (err) {
      fail(entry, err);
    }
  });
  signal?.throwIfAborted();
  // No link may point at a version before its file and directories are durable.
  try {
    await syncs.flush();
  } catch (err) {
    for (const entry of downloaded) {
      ready.delete(entry);
      fail(entry, err);
    }
  }

  // Phase 2: temporary links first, then the renames back to back, set by set (unless a set is held), then one fsync
  // per directory.
  const swaps: PreparedSwap[] = [];
  for (const { entry, paths } of planned) {
    if (!ready.has(entry)) continue;
    try {
      swaps.push({ entry, swap: await prepareLinkSwap(root, paths) });
    } catch (err) {
      fail(entry, err);
    }
  }
  const changedDirs = new Set<string>();
  const { setSwaps, held } = await commitBySet(swaps, {
    ...(opts.holdSets ? { hold: opts.holdSets } : {}),
    ...sig(signal),
    committed: ({ entry, swap }) => {
      changedDirs.add(swap.dir);
      outcomes.set(entry.name, { name: entry.name, outcome: 'updated', version: entry.version });
      logger.info('agent: link swapped', { name: entry.name, version: entry.version, was: swap.outcome });
    },
    failed: ({ entry }, err) => fail(entry, err),
  });
  for (const entry of held) outcomes.set(entry.name, { name: entry.name, outcome: 'held', version: entry.version });
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
    setSwaps,
  };
}

function resumeOpts(opts: BootFilesOptions): { maxResumes?: number; resumeDelayMs?: number } {
  return {
    ...(opts.maxResumes !== undefined ? { maxResumes: opts.maxResumes } : {}),
    ...(opts.resumeDelayMs !== undefined ? { resumeDelayMs: opts.resumeDelayMs } : {}),
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
