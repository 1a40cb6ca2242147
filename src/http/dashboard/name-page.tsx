import { versionOf } from '../../core/records.js';
import type { NameDetail } from './data.js';
import { age, bytes } from './format.js';
import { FreshnessBadge, Page } from './layout.js';

/**
 * `GET /files/<name>`: the status (state, validators, verification, pin), the kept versions newest first with a
 * rollback form each, and what every site holds. Forms are plain POSTs: they work without JavaScript.
 */
export function NamePage(props: {
  readonly detail: NameDetail;
  readonly admin: boolean;
  readonly signedIn: boolean;
  readonly notice?: string;
}) {
  const { now, status, upstream, sites } = props.detail;
  const name = status.name;
  return (
    <Page title={name} refresh signedIn={props.signedIn}>
      <h1>
        <code>{name}</code>
      </h1>
      {props.notice ? <p class="notice">{props.notice}</p> : null}
      <table id="status">
        <tbody>
          <Row label="State" field="state" value={status.state} />
          <Row label="URL" field="url" value={status.url ?? '-'} />
          <Row label="Current version" field="version" value={status.version ?? '-'} />
          <Row label="sha256" field="sha256" value={status.sha256 ?? '-'} />
          <Row
            label="Size"
            field="size"
            value={status.size === null ? '-' : `${bytes(status.size)} (${status.size} bytes)`}
          />
          <Row label="Fetched" field="fetched" value={status.fetchedAt ?? '-'} />
          <Row
            label="Upstream checked"
            field="checked"
            value={`${status.checkedAt ?? '-'} (${age(status.checkedAt, now)})`}
          />
          <Row label="Generation" field="generation" value={String(status.generation)} />
          <Row
            label="Upstream validators are for"
            field="validators-version"
            value={upstream ? versionOf(upstream.sha256) : '-'}
          />
          <Row label="Upstream ETag" field="etag" value={upstream?.etag ?? '-'} />
          <Row label="Upstream Last-Modified" field="last-modified" value={upstream?.lastModified ?? '-'} />
          <Row
            label="Verified by"
            field="verified-by"
            value={
              status.verifiedBy
                ? `${status.verifiedBy.kind} (${status.verifiedBy.algorithm}) ${status.verifiedBy.url}`
                : 'no upstream checksum document'
            }
          />
          <Row
            label="Error"
            field="error"
            value={status.error ? `${status.error.code}: ${status.error.message}` : '-'}
          />
          <tr>
            <th>Pinned</th>
            <td data-field="pinned">
              {status.pinned ? `${status.pinned.version} since ${status.pinned.at} (${status.pinned.reason})` : 'no'}
              {status.pinned && props.admin ? (
                <form method="post" action="/dashboard/unpin" class="inline">
                  {' '}
                  <input type="hidden" name="name" value={name} />
                  <button type="submit">Unpin</button>
                </form>
              ) : null}
            </td>
          </tr>
          <Row
            label="Held (newer upstream bytes, published by unpin)"
            field="held"
            value={status.held ? `${status.held.version} (${bytes(status.held.size)}, ${status.held.fetchedAt})` : '-'}
          />
        </tbody>
      </table>

      <h2>Versions (newest first)</h2>
      <table id="versions">
        <thead>
          <tr>
            <th>Version</th>
            <th>sha256</th>
            <th>Size</th>
            <th>URL</th>
            <th>Fetched</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {status.versions.map((v) => (
            <tr data-version={v.version}>
              <td class="mono">{v.version}</td>
              <td class="mono">{v.sha256}</td>
              <td title={`${v.size} bytes`}>{bytes(v.size)}</td>
              <td class="mono">{v.url}</td>
              <td>{v.fetchedAt}</td>
              <td>
                {v.version === status.version ? (
                  <strong>current</strong>
                ) : props.admin ? (
                  <form method="post" action="/dashboard/rollback" class="inline">
                    <input type="hidden" name="name" value={name} />
                    <input type="hidden" name="to" value={v.version} />
                    <button type="submit">Roll back to this version</button>
                  </form>
                ) : (
                  <span class="muted">rollback needs an admin token</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>

      <h2>Sites</h2>
      <table id="sites">
        <thead>
          <tr>
            <th>Site</th>
            <th>Freshness</th>
            <th>Version held</th>
            <th>Last report</th>
            <th>Message</th>
          </tr>
        </thead>
        <tbody>
          {sites.map(({ name: site, report, cell }) => (
            <tr data-site={site} data-freshness={cell?.freshness ?? 'unknown'}>
              <td>{site}</td>
              <td>
                <FreshnessBadge freshness={cell?.freshness ?? 'unknown'} />
              </td>
              <td class="mono">{cell?.version ?? '-'}</td>
              <td>{report ? age(report.at, now) : 'never'}</td>
              <td class="err">{cell?.message ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  );
}

function Row(props: { readonly label: string; readonly field: string; readonly value: string }) {
  return (
    <tr>
      <th>{props.label}</th>
      <td data-field={props.field} class="mono">
        {props.value}
      </td>
    </tr>
  );
}
