/**
 * TEMPORARY: the site-report contract (helper brief) until issue10-a-reports lands src/core/site-reports.ts; the
 * merge replaces every import of this file with that module and deletes it.
 */
import type { CatalogEntry } from '../../core/records.js';
import { getJson, putJson, type ObjectStore } from '../../storage/object-store.js';

export interface SiteReport {
  readonly site: string;
  readonly agent: { readonly id: string; readonly version: string };
  readonly at: string;
  readonly lastSyncAt: string | null;
  readonly lastSyncOk: boolean;
  readonly cursor: string | null;
  readonly files: readonly {
    readonly name: string;
    readonly version: string | null;
    readonly state: 'synced' | 'failed' | 'held';
    readonly message?: string;
  }[];
  readonly configs: { readonly ok: boolean; readonly failed: number };
  readonly errors: readonly string[];
  readonly disk: { readonly freeBytes: number; readonly totalBytes: number } | null;
  readonly intervalSeconds: number;
}

export type Freshness = 'up-to-date' | 'syncing' | 'behind' | 'failed' | 'unknown';

const key = (site: string) => `sites/${site}/report.json`;
export const readSiteReport = (store: ObjectStore, site: string) => getJson<SiteReport>(store, key(site));
export const writeSiteReport = (store: ObjectStore, report: SiteReport) => putJson(store, key(report.site), report);
export async function readSiteReports(store: ObjectStore, sites: readonly string[]) {
  return new Map(await Promise.all(sites.map(async (s) => [s, await readSiteReport(store, s)] as const)));
}

export function freshnessOf(entry: CatalogEntry, report: SiteReport | null, now: number): Freshness {
  if (!report || now - Date.parse(report.at) > (report.intervalSeconds * 3 + 60) * 1000) return 'unknown';
  const file = report.files.find((f) => f.name === entry.name);
  if (file?.state === 'failed') return 'failed';
  if (file?.version === entry.version) return 'up-to-date';
  return file?.state === 'held' ? 'syncing' : 'behind';
}
