import { readCatalog } from '../../core/catalog.js';
import { keys } from '../../core/object-keys.js';
import type { CatalogEntry, FileStatus, StatusRecord, UpstreamValidators } from '../../core/records.js';
import { readSiteReports, siteMatrix, type MatrixRow, type SiteCell, type SiteInfo } from '../../core/site-reports.js';
import { DEFAULT_SITE } from '../../core/sites.js';
import { getJson } from '../../storage/object-store.js';
import type { AppDeps } from '../deps.js';

/** What the dashboard shows, read once per page view (the pages only render it). */

export interface Matrix {
  readonly now: number;
  readonly sites: readonly SiteInfo[];
  readonly rows: readonly MatrixRow[];
}

const CONCURRENCY = 16;

/** The matrix of published names (the catalog agents follow) x the sites shown (core/site-reports.ts siteMatrix). */
export async function readMatrix(deps: AppDeps): Promise<Matrix> {
  const now = deps.clock.now();
  const [catalog, sites] = await Promise.all([readCatalog(deps.store), readSites(deps)]);
  const statuses = await mapLimited(catalog.entries, (e) => deps.fetcher.status(e.name));
  const byName = new Map(statuses.flatMap((s) => (s ? [[s.name, s] as const] : [])));
  return { now, sites, rows: siteMatrix(catalog.entries, byName, sites, now) };
}

export interface NameDetail {
  readonly now: number;
  readonly status: FileStatus;
  /** Validators upstream last gave (for the next conditional GET), from the status record; null before any. */
  readonly upstream: UpstreamValidators | null;
  /** The name's catalog entry (null while nothing is published). */
  readonly entry: CatalogEntry | null;
  /** Each site shown, with its view of the name (null while nothing is published). */
  readonly sites: readonly (SiteInfo & { readonly cell: SiteCell | null })[];
}

export async function readNameDetail(deps: AppDeps, name: string): Promise<NameDetail | null> {
  const now = deps.clock.now();
  const [status, record, catalog, sites] = await Promise.all([
    deps.fetcher.status(name),
    getJson<StatusRecord>(deps.store, keys.status(name)),
    readCatalog(deps.store),
    readSites(deps),
  ]);
  if (!status) return null;
  const entry = catalog.entries.find((e) => e.name === name) ?? null;
  const [row] = entry ? siteMatrix([entry], undefined, sites, now) : [];
  return {
    now,
    status,
    upstream: record?.upstream ?? null,
    entry,
    sites: sites.map((site) => ({ ...site, cell: row?.sites[site.name] ?? null })),
  };
}

/**
 * Every configured site with its report; the default site (the unprefixed routes) only when an agent reports for it
 * or no other site is configured: with `--sites east,west` it usually has no TFTP server of its own, and a column
 * of "unknown" would only hide the real ones.
 */
async function readSites(deps: AppDeps): Promise<SiteInfo[]> {
  const reports = await readSiteReports(
    deps.store,
    deps.sites.map((s) => s.name),
  );
  return deps.sites
    .map((s, i) => ({ name: s.name, serverName: s.serverName, report: reports[i] ?? null }))
    .filter((s) => s.name !== DEFAULT_SITE || s.report !== null || deps.sites.length === 1);
}

async function mapLimited<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
  return out;
}
