/**
 * The edge agent: one pass polls both catalogs (poll.ts), applies the site's boot configs (configs.ts), then the boot
 * files (boot-files.ts). Configs go first: they are small, and Foreman writes them before a host build needs the files.
 */
import { mkdir, realpath, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, describe } from '../core/errors.js';
import type { Clock, HasherFactory, Logger } from '../core/ports.js';
import { sleep, systemClock } from '../core/ports.js';
import type { Catalog } from '../core/records.js';
import { DEFAULT_SITE, SITE_NAME } from '../core/sites.js';
import { applyBootFiles } from './boot-files.js';
import type { NameOutcome } from './boot-files.js';
import { createConfigSync } from './configs.js';
import type { ConfigReport } from './configs.js';
import { isWithin, tmpName } from './layout.js';
import { pollCatalogs } from './poll.js';
import { removeStaleTemps, rootProblems } from './root-check.js';
import type { CatalogSource } from './source.js';

export interface AgentOptions {
  readonly source: CatalogSource;
  readonly root: string;
  /** Outside the root (the CLI defaults it to `<root>.state`): the root holds nothing but the layout. */
  readonly stateDir: string;
  /** Whose boot configs to materialise (`GET /api/v1/sites/<site>/configs`). Default 'default'. */
  readonly site?: string;
  readonly hasher: HasherFactory;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Parallel downloads. Default 4. */
  readonly concurrency?: number;
  /** Resumes per blob after transient read errors. Default 3. */
  readonly maxResumes?: number;
  readonly resumeDelayMs?: number;
}

export type { NameOutcome } from './boot-files.js';
export type { ConfigNote, ConfigReport } from './configs.js';

export interface SyncReport {
  /** Neither catalog had changed and nothing needed retrying. */
  readonly notModified: boolean;
  /** Of the files catalog. */
  readonly etag: string | null;
  /** No name failed and the configs are ok. */
  readonly ok: boolean;
  /** Empty when only the configs changed. */
  readonly names: readonly NameOutcome[];
  readonly bytesDownloaded: number;
  readonly versionsRemoved: number;
  readonly configs: ConfigReport;
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
  const site = opts.site ?? DEFAULT_SITE;
  // The site names a state file: the same rule as --site and --sites keeps it a plain file name.
  if (!SITE_NAME.test(site))
    throw new ConfigError([`site: ${JSON.stringify(site)} must be lowercase letters, digits and "-"`]);
  if (isWithin(root, stateDir)) {
    throw new ConfigError([
      `state-dir: ${stateDir} is inside the TFTP root ${root}; it must be outside (e.g. ${root}.state)`,
    ]);
  }

  const configSync = createConfigSync({ root, stateDir, site, source, hasher: opts.hasher, logger });
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
    logger.info('agent: started', { root, stateDir, site, source: source.description, staleTempsRemoved: removed });
  }

  async function sync(waitSeconds: number | undefined, signal?: AbortSignal): Promise<SyncReport> {
    const t0 = clock.now();
    const polled = await pollCatalogs({
      source,
      site,
      filesEtag: last?.catalog.etag ?? null,
      configsEtag: configSync.etag(),
      waitSeconds,
      signal,
    });
    // Each catalog is applied when it changed, or when the last pass left failures worth retrying.
    const filesDue = polled.files !== 'not-modified' || (last !== null && !last.ok);
    const configsDue = configSync.due(polled.configs);
    const configs = configsDue ? await configSync.pass(polled.configs, signal) : configSync.unchanged();

    let files: Pick<SyncReport, 'names' | 'bytesDownloaded' | 'versionsRemoved'> = {
      names: [],
      bytesDownloaded: 0,
      versionsRemoved: 0,
    };
    if (filesDue) {
      const catalog = polled.files === 'not-modified' ? (last as { catalog: Catalog }).catalog : polled.files;
      files = await applyBootFiles({ ...opts, root }, catalog.entries, signal);
      last = { catalog, ok: files.names.every((n) => n.outcome !== 'failed') };
    }
    const notModified = !filesDue && !configsDue;
    const report: SyncReport = {
      notModified,
      etag: last?.catalog.etag ?? null,
      // Files not due means they were clean last time (or never seen).
      ok: (last?.ok ?? true) && configs.ok,
      ...files,
      configs,
      durationMs: notModified ? 0 : clock.now() - t0,
    };
    if (notModified) return report;
    await writeState(report).catch((err: unknown) =>
      logger.warn('agent: cannot write state', { error: describe(err) }),
    );
    return report;
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
            configsWritten: report.configs.written.length,
            configsDeleted: report.configs.deleted.length,
            configsFailed: report.configs.failed.length + (report.configs.error ? 1 : 0),
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
    problems.push(...(await configSync.check()));
    return { ok: problems.length === 0, problems };
  }

  return {
    start,
    syncOnce: (signal) => serial(() => sync(undefined, signal)),
    run,
    check: () => serial(check),
  };
}
