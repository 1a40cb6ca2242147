/**
 * The edge agent: one pass polls the change feed (poll.ts), merges it into the agent's view of the catalog (view.ts),
 * applies what changed of the site's boot configs (configs.ts), then of the boot files (boot-files.ts). Configs go
 * first: they are small, and Foreman writes them before a host build needs the files. A full snapshot is read at
 * start, whenever the feed says its delta would be incomplete, and every `fullResyncMs` as a safety net (a
 * publisher that stopped between its write and its change event leaves a change only a full read finds).
 */
import { mkdir, realpath, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, describe } from '../core/errors.js';
import type { Clock, HasherFactory, Logger, TransferProgress } from '../core/ports.js';
import { sleep, systemClock } from '../core/ports.js';
import type { ConfigCatalog } from '../core/records.js';
import { setPrefixOf } from '../core/respin-sets.js';
import type { SiteReport } from '../core/site-reports.js';
import { DEFAULT_SITE, SITE_NAME } from '../core/sites.js';
import { VERSION } from '../runtime/node/version.js';
import { applyBootFiles } from './boot-files.js';
import type { NameOutcome } from './boot-files.js';
import { createConfigSync } from './configs.js';
import type { ConfigReport } from './configs.js';
import { isWithin, tmpName } from './layout.js';
import { pollChanges, type Settled } from './poll.js';
import { removeStaleTemps, rootProblems } from './root-check.js';
import { createSetHold } from './set-hold.js';
import { createSetSwapMetrics, writeMetricsFile, type SetSwap, type SetSwapMetrics } from './set-swap-metrics.js';
import type { CatalogSource } from './source.js';
import { createCatalogView } from './view.js';
import { createSiteReporter } from './site-reporter.js';

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
  /** Parallel downloads. Default 8. */
  readonly concurrency?: number;
  /** Resumes per blob after transient read errors. Default 3. */
  readonly maxResumes?: number;
  readonly resumeDelayMs?: number;
  /** A full snapshot at least this often, whatever the deltas said. Default 10 minutes. */
  readonly fullResyncMs?: number;
  /** Longest a respin set's swaps wait for its members still being fetched (set-hold.ts); 0: never. Default 2 min. */
  readonly setHoldMs?: number;
  /** Where the set-swap metrics are counted (`serve` shares them with /metrics); default: the agent's own. */
  readonly metrics?: SetSwapMetrics;
  /** Each blob download's bytes as they arrive (`agent --once` draws progress from them). */
  readonly onProgress?: TransferProgress;
  /** Site reports (site-reporter.ts): who reports and how often at least. Default: the host name, every 60 s. */
  readonly report?: { readonly agent?: SiteReport['agent']; readonly intervalSeconds?: number };
}

export type { NameOutcome } from './boot-files.js';
export type { ConfigNote, ConfigReport } from './configs.js';

export interface SyncReport {
  /** Nothing this agent follows had changed and nothing needed retrying. */
  readonly notModified: boolean;
  /** The change-feed position the agent is at. */
  readonly cursor: string | null;
  /** This pass read a full snapshot (start, the feed's choice, or the periodic resync). */
  readonly full: boolean;
  /** No name failed and the configs are ok. */
  readonly ok: boolean;
  /** The names this pass applied: every name after a full snapshot, else those that changed or failed before. */
  readonly names: readonly NameOutcome[];
  readonly bytesDownloaded: number;
  readonly versionsRemoved: number;
  /** Respin sets whose links moved in this pass, each with its rename window (first rename to last). */
  readonly setSwaps: readonly SetSwap[];
  /** Names whose new version is downloaded but whose set waits for a member still being fetched. */
  readonly held: readonly string[];
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
const FULL_RESYNC_MS = 10 * 60_000;
const SET_HOLD_MS = 120_000;
const REPORT_INTERVAL_S = 60;
/** How soon a held set is looked at again. */
const HOLD_POLL_SECONDS = 1;

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
  const fullResyncMs = opts.fullResyncMs ?? FULL_RESYNC_MS;
  const view = createCatalogView();
  const metrics = opts.metrics ?? createSetSwapMetrics();
  const setHold = createSetHold({
    source,
    holdMs: opts.setHoldMs ?? SET_HOLD_MS,
    clock,
    logger,
    metrics,
    members: (prefix) =>
      view
        .peek('not-modified', false)
        .files.filter((e) => setPrefixOf(e.name, e.basename, e.url) === prefix)
        .map((e) => ({ name: e.name, version: e.version })),
  });
  const reporter = createSiteReporter({
    source,
    site,
    root,
    clock,
    logger,
    agent: opts.report?.agent ?? { id: hostname(), version: VERSION },
    intervalSeconds: opts.report?.intervalSeconds ?? REPORT_INTERVAL_S,
    names: () => view.peek('not-modified', false).files.map((e) => e.name),
  });
  let lastFullAt = -Infinity;
  /** The source did not know the site last time: its configs need a full read once it does. */
  let siteUnknown = false;
  let queue: Promise<unknown> = Promise.resolve();
  // One sync at a time: two overlapping passes would race each other's renames and GC.
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queue.then(fn, fn);
    queue = p.catch(() => undefined);
    return p;
  };
  const configCatalog = (entries: ConfigCatalog['entries']): ConfigCatalog => {
    const cursor = view.cursor ?? '';
    return { site, cursor, etag: `"${cursor}"`, entries };
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
    await writeMetricsFile(stateDir, metrics.render());
  }

  async function sync(waitSeconds: number | undefined, signal?: AbortSignal): Promise<SyncReport> {
    const t0 = clock.now();
    const resync = view.cursor === null || t0 - lastFullAt >= fullResyncMs;
    const polled = await pollChanges({
      source,
      site,
      since: resync || siteUnknown ? null : view.cursor,
      fallbackSince: resync ? null : view.cursor,
      // A snapshot is answered at once anyway.
      waitSeconds: resync ? 0 : waitSeconds,
      signal,
    });
    const got = polled.changes;
    if (got !== 'not-modified') {
      view.merge(got, polled.siteError === null);
      if (got.complete) lastFullAt = t0;
    }
    siteUnknown = polled.siteError !== null;

    const configsDue = siteUnknown ? null : view.configsDue();
    let configs = configSync.unchanged();
    if (polled.siteError) {
      configs = await configSync.pass({ ok: false, error: polled.siteError }, signal);
    } else if (configsDue) {
      configs = await configSync.pass({ ok: true, value: configCatalog(configsDue) }, signal);
      view.configsApplied(configs.error ? 'all' : configs.failed.map((f) => f.path));
    }

    let files: Pick<SyncReport, 'names' | 'bytesDownloaded' | 'versionsRemoved' | 'setSwaps'> = {
      names: [],
      bytesDownloaded: 0,
      versionsRemoved: 0,
      setSwaps: [],
    };
    const filesDue = view.filesDue();
    const namesWith = (outcome: NameOutcome['outcome']) =>
      files.names.filter((n) => n.outcome === outcome).map((n) => n.name);
    if (filesDue) {
      files = await applyBootFiles({ ...opts, root, holdSets: setHold.decide }, filesDue, signal);
      view.filesApplied(namesWith('failed'), namesWith('held'));
      metrics.observe(files.setSwaps);
    }
    const notModified = !filesDue && !configsDue && !polled.siteError;
    const report: SyncReport = {
      notModified,
      cursor: view.cursor,
      full: got !== 'not-modified' && got.complete,
      ok: view.filesClean && configs.ok,
      ...files,
      held: namesWith('held'),
      configs,
      durationMs: notModified ? 0 : clock.now() - t0,
    };
    reporter.passed({ startedAt: t0, ok: report.ok, cursor: report.cursor, names: report.names, configs });
    if (notModified) return report;
    await Promise.all([writeState(report), writeMetricsFile(stateDir, metrics.render())]).catch((err: unknown) =>
      logger.warn('agent: cannot write state', { error: describe(err) }),
    );
    return report;
  }

  /** `--once`: passes until no set is held (each hold ends within --set-hold), so the root it leaves is complete. */
  async function syncHeld(signal?: AbortSignal): Promise<SyncReport> {
    for (;;) {
      const report = await sync(undefined, signal);
      if (report.held.length === 0) return report;
      await sleep(HOLD_POLL_SECONDS * 1000, signal);
      signal?.throwIfAborted();
    }
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
    let holding = false;
    reporter.heartbeat(signal);
    const backoff = () =>
      Math.round(Math.min(intervalMs * 2 ** Math.min(failures, 10), MAX_BACKOFF_MS) * (0.5 + Math.random() / 2));
    while (!signal.aborted) {
      const t0 = clock.now();
      try {
        // A held set is looked at again soon, whether or not the feed changes meanwhile (a member may fail, or turn
        // out unchanged, without a change event).
        const report = await serial(() =>
          sync(holding ? Math.min(waitSeconds, HOLD_POLL_SECONDS) : waitSeconds, signal),
        );
        holding = report.held.length > 0;
        if (!report.notModified) void reporter.send();
        failures = report.ok ? 0 : failures + 1;
        const retryInMs = report.ok ? 0 : backoff();
        if (!report.notModified) {
          const count = (o: NameOutcome['outcome']) => report.names.filter((n) => n.outcome === o).length;
          const fields = {
            cursor: report.cursor,
            full: report.full,
            updated: count('updated'),
            failed: count('failed'),
            configsWritten: report.configs.written.length,
            configsDeleted: report.configs.deleted.length,
            configsFailed: report.configs.failed.length + (report.configs.error ? 1 : 0),
            bytes: report.bytesDownloaded,
            ms: report.durationMs,
            held: report.held.length,
            setSwaps: report.setSwaps,
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
        reporter.passFailed(err);
        void reporter.send();
        await sleep(retryInMs, signal);
      }
    }
  }

  async function check(): Promise<{ ok: boolean; problems: string[] }> {
    const polled = await pollChanges({
      source,
      site,
      since: siteUnknown ? null : view.cursor,
      fallbackSince: view.cursor,
      waitSeconds: 0,
      signal: undefined,
    });
    // Only sync() updates the view: what check() saw but nobody applied must not look applied later.
    const current = view.peek(polled.changes, polled.siteError === null);
    const problems = await rootProblems(root, current.files);
    const configs: Settled<ConfigCatalog> = polled.siteError
      ? { ok: false, error: polled.siteError }
      : { ok: true, value: configCatalog(current.configs) };
    problems.push(...(await configSync.check(configs)));
    return { ok: problems.length === 0, problems };
  }

  return {
    start,
    syncOnce: async (signal) => {
      const report = await serial(() => syncHeld(signal));
      await reporter.send();
      return report;
    },
    run,
    check: () => serial(check),
  };
}
