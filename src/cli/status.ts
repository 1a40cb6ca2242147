/**
 * `pxecache status [<name>]`: the state the dashboard shows, as plain text (docs/sites.md). Without a name, names x
 * sites (the version each site's link points to and its freshness) and one line per site; with a name, its status at
 * the fetcher and its row. Exit 0 when every cell shown is up-to-date or syncing (and the name is not failed), 1 when
 * any is failed, behind or unknown (a site whose report went stale: its agent stopped), 2 for usage.
 */
import type { StatusConfig } from '../core/config.js';
import { NotFoundError } from '../core/errors.js';
import type { FileStatus } from '../core/records.js';
import { siteMatrix, type MatrixRow, type SiteInfo, type SiteReport } from '../core/site-reports.js';
import { EXIT_FAILED, EXIT_OK } from './exit.js';
import { checkedName, openStateSource } from './status-source.js';

type Out = (line: string) => void;

export async function runStatus(config: StatusConfig, out: Out, now = Date.now()): Promise<number> {
  const name = config.name === undefined ? undefined : checkedName(config.name);
  const state = await openStateSource(config);
  const [entries, allSites, status] = await Promise.all([
    state.entries(),
    state.sites(),
    name === undefined ? null : state.status(name),
  ]);
  // A site no agent ever reported for has no column: listed once below instead of a column of "unknown".
  const sites = allSites.filter((s) => s.report !== null);
  const silent = allSites.filter((s) => s.report === null).map((s) => s.name);
  const shown = name === undefined ? entries : entries.filter((e) => e.name === name);
  if (name !== undefined && !status && shown.length === 0) throw new NotFoundError(`no file named "${name}"`);
  const rows = siteMatrix(shown, status ? new Map([[status.name, status]]) : undefined, sites, now);

  if (name === undefined) printMatrix(rows, sites, out);
  else printName(status, rows[0], out);
  out('');
  printSites(sites, now, out);
  if (silent.length) out(`no report yet: ${silent.join(', ')}`);

  const bad = rows.some((r) => Object.values(r.sites).some((c) => !['up-to-date', 'syncing'].includes(c.freshness)));
  return bad || status?.state === 'failed' ? EXIT_FAILED : EXIT_OK;
}

function printMatrix(rows: readonly MatrixRow[], sites: readonly SiteInfo[], out: Out): void {
  const table = [['NAME', 'VERSION', ...sites.map((s) => s.name)]];
  for (const r of rows)
    table.push([
      r.name,
      r.entry.version,
      ...sites.map((s) => {
        const cell = r.sites[s.name];
        return cell ? `${cell.version ?? '-'} ${cell.freshness}` : '-';
      }),
    ]);
  for (const line of aligned(table)) out(line);
  if (rows.length === 0) out('(no published names)');
}

function printName(status: FileStatus | null, row: MatrixRow | undefined, out: Out): void {
  const kv: [string, string][] = [
    ['name', status?.name ?? row?.name ?? '-'],
    ['state', status?.state ?? '-'],
    ['version', status?.version ?? '-'],
    ['sha256', status?.sha256 ?? '-'],
    ['size', status?.size === null || status === null ? '-' : String(status.size)],
    ['url', status?.url ?? '-'],
    ['fetchedAt', status?.fetchedAt ?? '-'],
    ['checkedAt', status?.checkedAt ?? '-'],
    ['error', status?.error ? `${status.error.code}: ${status.error.message}` : '-'],
    ['verifiedBy', status?.verifiedBy ? `${status.verifiedBy.kind} ${status.verifiedBy.url}` : '-'],
    ['pinned', status?.pinned ? `${status.pinned.version} (${status.pinned.reason} at ${status.pinned.at})` : '-'],
    ['held', status?.held ? `${status.held.version} (fetched ${status.held.fetchedAt})` : '-'],
    ['versions', status?.versions.map((v) => `${v.version} (${v.fetchedAt})`).join(', ') || '-'],
  ];
  for (const [site, cell] of Object.entries(row?.sites ?? {}))
    kv.push([`site ${site}`, `${cell.version ?? '-'} ${cell.freshness}${cell.message ? `: ${cell.message}` : ''}`]);
  for (const line of aligned(kv)) out(line);
}

function printSites(sites: readonly SiteInfo[], now: number, out: Out): void {
  const table = [['SITE', 'REPORTED', 'LAST SYNC', 'CONFIGS', 'FREE DISK', 'AGENT']];
  for (const { name, report } of sites as (SiteInfo & { report: SiteReport })[])
    table.push([
      name,
      `${ago(now, report.at)} ago`,
      report.lastSyncAt === null
        ? 'never'
        : `${report.lastSyncOk ? 'ok' : 'FAILED'} ${ago(now, report.lastSyncAt)} ago`,
      report.configs.ok ? 'ok' : `${report.configs.failed} failed`,
      report.disk ? `${gib(report.disk.freeBytes)} of ${gib(report.disk.totalBytes)}` : '-',
      `${report.agent.id} ${report.agent.version}`,
    ]);
  for (const line of aligned(table)) out(line);
  for (const { name, report } of sites) for (const e of report?.errors ?? []) out(`${name}: ${e}`);
}

/** Columns padded to their widest cell, two spaces apart; no trailing spaces. */
export function aligned(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

function ago(now: number, iso: string): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
