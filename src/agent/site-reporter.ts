/**
 * The agent's heartbeat (docs/sites.md): after every pass that changed something, and every `intervalSeconds`
 * whatever happened, it tells the source what its site holds: the version each link points to (read from the root,
 * not assumed from the catalog), names that failed or wait for their respin set, the configs' state, the last pass,
 * the root's free disk. Reporting is best effort: a failed report is logged once per distinct error and never fails
 * a sync.
 */
import { readlink, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { describe } from '../core/errors.js';
import type { Clock, Logger } from '../core/ports.js';
import type { SiteFile, SiteReport } from '../core/site-reports.js';
import type { NameOutcome } from './boot-files.js';
import type { ConfigReport } from './configs.js';
import { versionOfTarget } from './layout.js';
import type { CatalogSource } from './source.js';

export interface SiteReporterOptions {
  readonly source: CatalogSource;
  readonly site: string;
  readonly root: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Who reports: `{id: <host name>, version: <pxecache version>}`. */
  readonly agent: SiteReport['agent'];
  /** The heartbeat period; also tells readers when the report goes stale (3 intervals + 60 s). */
  readonly intervalSeconds: number;
  /** The names the agent follows (its catalog view). */
  readonly names: () => readonly string[];
}

/** What one pass contributes; `startedAt` is when it polled, so a publication after it is not claimed as seen. */
export interface PassSummary {
  readonly startedAt: number;
  readonly ok: boolean;
  readonly cursor: string | null;
  readonly names: readonly NameOutcome[];
  readonly configs: ConfigReport;
}

export interface SiteReporter {
  passed(pass: PassSummary): void;
  /** A pass that threw (source unreachable, root unwritable): the report says so until a pass completes. */
  passFailed(err: unknown): void;
  /** Builds and sends a report now; resolves when sent or refused (never rejects). */
  send(): Promise<void>;
  /** Sends every `intervalSeconds` until `signal` aborts. */
  heartbeat(signal: AbortSignal): void;
}

const READLINK_BATCH = 64;

export function createSiteReporter(opts: SiteReporterOptions): SiteReporter {
  const { clock, logger } = opts;
  const notes = new Map<string, Pick<SiteFile, 'state' | 'message'>>();
  let lastSyncAt: number | null = null;
  let lastSyncOk = false;
  let cursor: string | null = null;
  let configs: SiteReport['configs'] = { ok: true, failed: 0 };
  let configError: string | null = null;
  let passError: string | null = null;
  let lastError: string | null = null;
  let sending: Promise<void> = Promise.resolve();

  async function build(): Promise<SiteReport> {
    const names = opts.names();
    const versions: (string | null)[] = [];
    for (let i = 0; i < names.length; i += READLINK_BATCH)
      versions.push(...(await Promise.all(names.slice(i, i + READLINK_BATCH).map(linkVersion))));
    const files = names.map((name, i): SiteFile => {
      const note = notes.get(name);
      return {
        name,
        version: versions[i] ?? null,
        state: note?.state ?? 'synced',
        ...(note?.message !== undefined ? { message: note.message } : {}),
      };
    });
    return {
      site: opts.site,
      agent: opts.agent,
      at: new Date(clock.now()).toISOString(),
      lastSyncAt: lastSyncAt === null ? null : new Date(lastSyncAt).toISOString(),
      lastSyncOk,
      cursor,
      files,
      configs,
      errors: [passError, configError].filter((e): e is string => e !== null),
      disk: await disk(),
      intervalSeconds: opts.intervalSeconds,
    };
  }

  async function linkVersion(name: string): Promise<string | null> {
    try {
      return versionOfTarget(name, await readlink(join(opts.root, name)));
    } catch {
      return null; // no link yet (first download failed or pending)
    }
  }

  async function disk(): Promise<SiteReport['disk']> {
    try {
      const s = await statfs(opts.root);
      return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
    } catch {
      return null;
    }
  }

  async function sendNow(): Promise<void> {
    try {
      await opts.source.report(await build());
      if (lastError !== null) logger.info('agent: site report sent again', { site: opts.site });
      lastError = null;
    } catch (err) {
      const message = describe(err);
      // Once per distinct error: a fetcher without the route (or a down one) would otherwise log every heartbeat.
      if (message !== lastError) logger.warn('agent: cannot send site report', { site: opts.site, error: message });
      lastError = message;
    }
  }

  return {
    passed(pass) {
      lastSyncAt = pass.startedAt;
      lastSyncOk = pass.ok;
      cursor = pass.cursor;
      for (const n of pass.names) {
        if (n.outcome === 'failed') notes.set(n.name, { state: 'failed', message: n.message });
        else if (n.outcome === 'held') notes.set(n.name, { state: 'held' });
        else notes.delete(n.name);
      }
      passError = null;
      const c = pass.configs;
      // An unchanged catalog with nothing to retry: the configs are as the last pass that looked left them.
      if (c.notModified) return;
      configs = { ok: c.ok, failed: c.failed.length + (c.error ? 1 : 0) };
      configError = c.error;
    },
    passFailed(err) {
      lastSyncOk = false;
      passError = describe(err);
    },
    send() {
      // One report at a time, in order: a slow heartbeat must not land after the report of a later pass.
      sending = sending.then(sendNow);
      return sending;
    },
    heartbeat(signal) {
      const timer = setInterval(() => void this.send(), opts.intervalSeconds * 1000);
      timer.unref();
      signal.addEventListener('abort', () => clearInterval(timer), { once: true });
    },
  };
}
