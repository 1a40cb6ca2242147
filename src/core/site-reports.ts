/**
 * What each edge agent reports about the TFTP root it keeps (docs/sites.md): the fetcher keeps the latest report per
 * site, last writer wins (one agent per site is the model), and the dashboard and `pxecache status` derive every
 * name's freshness at every site from it. Runtime-agnostic: Workers and Lambda serve the same routes.
 */
import { z } from 'zod';
import { InputError } from './errors.js';
import { keys } from './object-keys.js';
import type { CatalogEntry, FileStatus } from './records.js';
import type { ObjectStore } from '../storage/object-store.js';
import { getJson, putJson } from '../storage/object-store.js';

const iso = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 date');
const count = z.number().int().min(0);

/** The body of `POST /api/v1/sites/<site>/report`, validated field by field (a 400 names the first bad one). */
export const siteReportSchema = z.object({
  site: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a site name'),
  agent: z.object({ id: z.string().min(1).max(200), version: z.string().max(100) }),
  at: iso,
  lastSyncAt: iso.nullable(),
  lastSyncOk: z.boolean(),
  cursor: z.string().max(100).nullable(),
  files: z
    .array(
      z.object({
        name: z.string().min(1).max(1024),
        version: z.string().max(100).nullable(),
        state: z.enum(['synced', 'failed', 'held']),
        message: z.string().max(2000).optional(),
      }),
    )
    .max(100_000),
  configs: z.object({ ok: z.boolean(), failed: count }),
  errors: z.array(z.string().max(2000)).max(100),
  disk: z.object({ freeBytes: count, totalBytes: count }).nullable(),
  intervalSeconds: z.number().positive().max(86_400),
});

export type SiteReport = z.infer<typeof siteReportSchema>;
export type SiteFile = SiteReport['files'][number];

/** `GET /api/v1/sites`: every configured site with its latest report. */
export interface SiteInfo {
  readonly name: string;
  readonly serverName: string;
  readonly report: SiteReport | null;
}

export type Freshness = 'up-to-date' | 'syncing' | 'behind' | 'failed' | 'unknown';

/** A report parsed, or an InputError naming the first bad field (`files[2].state`). */
export function parseSiteReport(body: unknown, field = 'body'): SiteReport {
  const result = siteReportSchema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = (issue?.path ?? []).reduce<string>(
    (at, p) => (typeof p === 'number' ? `${at}[${p}]` : at ? `${at}.${String(p)}` : String(p)),
    '',
  );
  throw new InputError(path || field, issue?.message ?? 'is not a site report');
}

export async function readSiteReport(store: ObjectStore, site: string): Promise<SiteReport | null> {
  return getJson<SiteReport>(store, keys.siteReport(site));
}

/** Reports of `sites`, in their order (null for a site that never reported). */
export async function readSiteReports(store: ObjectStore, sites: readonly string[]): Promise<(SiteReport | null)[]> {
  return Promise.all(sites.map((site) => readSiteReport(store, site)));
}

export async function writeSiteReport(store: ObjectStore, report: SiteReport): Promise<void> {
  await putJson(store, keys.siteReport(report.site), report);
}

/** A report older than this says nothing any more: the agent stopped, or cannot reach the fetcher. */
export const staleAfterMs = (report: SiteReport) => (3 * report.intervalSeconds + 60) * 1000;
/**
 * An agent that missed a heartbeat is not working on anything: a version it lacks is `behind`, not `syncing`.
 * Two intervals, so that one late report (a slow fetcher, a full GC pause) does not flip the state.
 */
const aliveWithinMs = (report: SiteReport) => 2 * report.intervalSeconds * 1000 + 5_000;

/**
 * How current one name is at one site. `syncing`: the agent is alive, has not finished a pass since the version was
 * published (lastSyncAt is the start of the last pass, so a pass that polled before the publication does not count)
 * or holds it back for its respin set. `behind`: it lacks the version otherwise (it stopped reporting, its last
 * pass failed, or a pass after the publication did not bring it). Clocks of fetcher and agent are compared: a skew
 * larger than a pass shows as `syncing` for a moment longer or shorter.
 */
export function freshnessOf(entry: CatalogEntry, report: SiteReport | null, now: number): Freshness {
  return freshnessWith(
    entry,
    report,
    report?.files.find((f) => f.name === entry.name),
    now,
  );
}

function freshnessWith(
  entry: CatalogEntry,
  report: SiteReport | null,
  file: SiteFile | undefined,
  now: number,
): Freshness {
  if (!report || now - Date.parse(report.at) > staleAfterMs(report)) return 'unknown';
  if (file?.state === 'failed') return 'failed';
  if (file?.version === entry.version) return 'up-to-date';
  if (file?.state === 'held') return 'syncing';
  const alive = now - Date.parse(report.at) <= aliveWithinMs(report);
  const passSince = report.lastSyncAt !== null && Date.parse(report.lastSyncAt) >= Date.parse(entry.fetchedAt);
  return alive && report.lastSyncOk && !passSince ? 'syncing' : 'behind';
}

export interface SiteCell {
  /** The version the site's link points to (null: no link yet, or no report). */
  readonly version: string | null;
  readonly freshness: Freshness;
  /** Why it failed at the site (the agent's message). */
  readonly message?: string;
}

export interface MatrixRow {
  readonly name: string;
  readonly entry: CatalogEntry;
  /** The fetcher's status of the name, when the caller passed statuses. */
  readonly status: FileStatus | null;
  /** By site name, in the order of `sites`. */
  readonly sites: Readonly<Record<string, SiteCell>>;
}

/** Names x sites, as the dashboard and `pxecache status` show them; rows sorted by name. */
export function siteMatrix(
  entries: readonly CatalogEntry[],
  statuses: ReadonlyMap<string, FileStatus> | undefined,
  sites: readonly SiteInfo[],
  now: number,
): MatrixRow[] {
  const byName = sites.map((s) => ({
    name: s.name,
    report: s.report,
    files: new Map((s.report?.files ?? []).map((f) => [f.name, f])),
  }));
  return [...entries]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((entry) => {
      const cells: Record<string, SiteCell> = {};
      for (const site of byName) {
        const file = site.files.get(entry.name);
        const freshness = freshnessWith(entry, site.report, file, now);
        cells[site.name] = {
          version: site.report ? (file?.version ?? null) : null,
          freshness,
          ...(file?.message !== undefined ? { message: file.message } : {}),
        };
      }
      return { name: entry.name, entry, status: statuses?.get(entry.name) ?? null, sites: cells };
    });
}
