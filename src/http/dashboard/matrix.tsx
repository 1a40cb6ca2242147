import type { SiteCell, SiteInfo } from '../../core/site-reports.js';
import type { Matrix } from './data.js';
import { age, bytes, namePage } from './format.js';
import { FreshnessBadge, Page } from './layout.js';

/**
 * `GET /`: one card per site (its agent's last report), then the names x sites matrix. The cells carry their values
 * in `data-*` attributes too, for scripts and the acceptance test.
 */
export function MatrixPage(props: { readonly matrix: Matrix; readonly signedIn: boolean }) {
  const { now, sites, rows } = props.matrix;
  return (
    <Page title="Sites and files" refresh signedIn={props.signedIn}>
      <h1>Sites</h1>
      <div class="sites">
        {sites.map((s) => (
          <SiteCard site={s} now={now} />
        ))}
      </div>
      <h1>Files</h1>
      {rows.length === 0 ? <p class="muted">Nothing is published yet.</p> : null}
      <table id="matrix">
        <thead>
          <tr>
            <th>Name</th>
            <th>State</th>
            <th>Current version</th>
            <th>Size</th>
            <th>Upstream checked</th>
            <th>Error</th>
            {sites.map((s) => (
              <th data-site={s.name}>{s.name}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map(({ entry, status, sites: cells }) => (
            <tr data-name={entry.name}>
              <td>
                <a href={namePage(entry.name)}>{entry.name}</a>
                {status?.pinned ? <span class="muted"> (pinned)</span> : null}
              </td>
              <td data-field="state">{status?.state ?? '-'}</td>
              <td data-field="version" class="mono">
                {entry.version}
              </td>
              <td data-field="size" data-bytes={String(entry.size)} title={`${entry.size} bytes`}>
                {bytes(entry.size)}
              </td>
              <td data-field="checked" title={status?.checkedAt ?? ''}>
                {age(status?.checkedAt, now)}
              </td>
              <td data-field="error" class="err">
                {status?.error ? `${status.error.code}: ${status.error.message}` : ''}
              </td>
              {sites.map(({ name: site }) => (
                <Cell site={site} cell={cells[site]} />
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  );
}

function Cell(props: { readonly site: string; readonly cell: SiteCell | undefined }) {
  const cell = props.cell ?? { freshness: 'unknown', version: null };
  return (
    <td data-site={props.site} data-freshness={cell.freshness} data-version={cell.version ?? ''}>
      <FreshnessBadge freshness={cell.freshness} /> <span class="mono">{cell.version ?? '-'}</span>
      {cell.message ? <div class="err">{cell.message}</div> : null}
    </td>
  );
}

export function SiteCard(props: { readonly site: SiteInfo; readonly now: number }) {
  const site = props.site;
  const report = site.report;
  return (
    <div class="site" data-site={site.name} data-reported={report?.at ?? ''}>
      <strong>{site.name}</strong>
      {site.serverName ? <span class="muted"> ({site.serverName})</span> : null}
      {report ? (
        <div>
          <div>
            Last report: <span title={report.at}>{age(report.at, props.now)}</span>
            <span class="muted"> from {report.agent.id}</span>
          </div>
          <div>
            Last sync: {age(report.lastSyncAt, props.now)} {report.lastSyncOk ? 'ok' : <span class="err">failed</span>}
          </div>
          <div data-field="disk">
            Free disk: {report.disk ? `${bytes(report.disk.freeBytes)} of ${bytes(report.disk.totalBytes)}` : 'unknown'}
          </div>
          {report.errors.map((e) => (
            <div class="err">{e}</div>
          ))}
        </div>
      ) : (
        <div class="muted">No agent has reported.</div>
      )}
    </div>
  );
}
