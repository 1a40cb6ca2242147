import { readCatalog } from '../../core/catalog.js';
import { keys } from '../../core/object-keys.js';
import type { CatalogEntry, FileStatus, StatusRecord, UpstreamValidators } from '../../core/records.js';
import { DEFAULT_SITE, type Site } from '../../core/sites.js';
import { getJson } from '../../storage/object-store.js';
import type { AppDeps } from '../deps.js';
import { freshnessOf, readSiteReports, type Freshness, type SiteReport } from './site-reports-stub.js';

/** What the dashboard shows, read once per page view (the pages only render it). */

export interface SiteColumn {
  readonly site: Site;
  readonly report: SiteReport | null;
}

export interface Cell {
  readonly freshness: Freshness;
  /** The version the site reported holding, null when it reported none (or no report). */
  readonly version: string | null;
  /** The agent's message for a file it failed (or holds back). */
  readonly message: string | null;
}

export interface NameRow {
  readonly entry: CatalogEntry;
  readonly status: FileStatus | null;
  /** One per column of `sites`, in order. */
  readonly cells: readonly Cell[];
}

export interface Matrix {
  readonly now: number;
  readonly sites: readonly SiteColumn[];
  readonly rows: readonly NameRow[];
}

const CONCURRENCY = 16;

/** The matrix of published names (the catalog agents follow) x the sites shown. */
export async function readMatrix(deps: AppDeps): Promise<Matrix> {
  const now = deps.clock.now();
  const [catalog, reports] = await Promise.all([
    readCatalog(deps.store),
    readSiteReports(
      deps.store,
      deps.sites.map((s) => s.name),
    ),
  ]);
  const sites = shownSites(deps.sites, reports);
  const entries = [...catalog.entries].sort((a, b) => a.name.localeCompare(b.name));
  const statuses = await mapLimited(entries, (e) => deps.fetcher.status(e.name));
  const rows = entries.map((entry, i) => ({
    entry,
    status: statuses[i] ?? null,
    cells: sites.map(({ report }) => cellOf(entry, report, now)),
  }));
  return { now, sites, rows };
}

/**
 * The default site (the unprefixed routes) is shown only when an agent reports for it or no other site is
 * configured: with `--sites east,west` it usually has no TFTP server of its own, and a column of "unknown" would
 * only hide the real ones.
 */
function shownSites(sites: readonly Site[], reports: ReadonlyMap<string, SiteReport | null>): SiteColumn[] {
  return sites
    .map((site) => ({ site, report: reports.get(site.name) ?? null }))
    .filter((s) => s.site.name !== DEFAULT_SITE || s.report !== null || sites.length === 1);
}

function cellOf(entry: CatalogEntry, report: SiteReport | null, now: number): Cell {
  const file = report?.files.find((f) => f.name === entry.name);
  return { freshness: freshnessOf(entry, report, now), version: file?.version ?? null, message: file?.message ?? null };
}

export interface NameDetail {
  readonly now: number;
  readonly status: FileStatus;
  /** Validators upstream last gave (for the next conditional GET), from the status record; null before any. */
  readonly upstream: UpstreamValidators | null;
  /** The name's catalog entry (null while nothing is published) and each site's view of it. */
  readonly entry: CatalogEntry | null;
  readonly sites: readonly (SiteColumn & { readonly cell: Cell | null })[];
}

export async function readNameDetail(deps: AppDeps, name: string): Promise<NameDetail | null> {
  const now = deps.clock.now();
  const [status, record, catalog, reports] = await Promise.all([
    deps.fetcher.status(name),
    getJson<StatusRecord>(deps.store, keys.status(name)),
    readCatalog(deps.store),
    readSiteReports(
      deps.store,
      deps.sites.map((s) => s.name),
    ),
  ]);
  if (!status) return null;
  const entry = catalog.entries.find((e) => e.name === name) ?? null;
  const sites = shownSites(deps.sites, reports).map(({ site, report }) => {
    return { site, report, cell: entry ? cellOf(entry, report, now) : null };
  });
  return { now, status, upstream: record?.upstream ?? null, entry, sites };
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
