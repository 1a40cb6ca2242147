/**
 * CatalogSource over the fetcher's native API (DESIGN.md "Native contract"): the change feed `GET /api/v1/changes`
 * (`?since=` cursor, `site=`, 304 and `?wait=` long-poll), `GET /api/v1/blobs/<sha256>` with Range.
 * Node-only (undici), like the rest of the agent.
 */
import { request } from 'undici';
import type { Dispatcher } from 'undici';
import { ConfigError, PxeError, describe } from '../core/errors.js';
import type { CatalogEntry, Changes, ConfigEntry } from '../core/records.js';
import type { SiteReport } from '../core/site-reports.js';
import { UnknownSiteError, type CatalogSource, type SourceFileState } from './source.js';

export interface HttpSourceOptions {
  readonly baseUrl: string;
  readonly token?: string;
  /** Time to response headers (added to the long-poll wait for the catalog). Default 30 s. */
  readonly headersTimeoutMs?: number;
  /** Maximum silence between body chunks. Default 60 s. */
  readonly bodyTimeoutMs?: number;
  readonly dispatcher?: Dispatcher;
}

type Response = Dispatcher.ResponseData;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 3;

export function createHttpSource(opts: HttpSourceOptions): CatalogSource {
  let base: URL;
  try {
    base = new URL(opts.baseUrl.endsWith('/') ? opts.baseUrl : `${opts.baseUrl}/`);
  } catch {
    throw new ConfigError([`source: ${JSON.stringify(opts.baseUrl)} is not a URL`]);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new ConfigError([`source: ${base.protocol} is not http: or https:`]);
  }
  const headersTimeout = opts.headersTimeoutMs ?? 30_000;
  const bodyTimeout = opts.bodyTimeoutMs ?? 60_000;

  async function get(url: URL, headers: Record<string, string>, extraWaitMs: number, signal?: AbortSignal) {
    let at = url;
    for (let hop = 0; ; hop++) {
      const h: Record<string, string> = { ...headers, 'accept-encoding': 'identity', 'user-agent': 'pxecache-agent' };
      // The bearer token goes to the fetcher only: a blob may redirect to a presigned S3 URL (Lambda), where a second
      // credential makes S3 refuse the request and where the token must not leak anyway.
      if (opts.token !== undefined && at.origin === base.origin) h['authorization'] = `Bearer ${opts.token}`;
      let res: Response;
      try {
        res = await request(at, {
          method: 'GET',
          headers: h,
          signal: signal ?? null,
          headersTimeout: headersTimeout + extraWaitMs,
          bodyTimeout,
          ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
        });
      } catch (err) {
        signal?.throwIfAborted();
        throw new PxeError('source-unreachable', `[source:http] GET ${show(at)}: ${describe(err)}`, { cause: err });
      }
      const location = header(res, 'location');
      if (!REDIRECTS.has(res.statusCode) || location === undefined) return { res, url: at };
      await res.body.dump();
      if (hop >= MAX_REDIRECTS) throw statusError(at, res.statusCode, `more than ${MAX_REDIRECTS} redirects`);
      at = new URL(location, at);
    }
  }

  /** A JSON document with 304 and `?wait=` long-poll. `explain` may turn an error status into a specific error. */
  async function getDoc(
    url: URL,
    waitSeconds: number | undefined,
    signal: AbortSignal | undefined,
    explain: (status: number, detail: string) => Error | null = () => null,
  ): Promise<{ body: unknown; where: string } | 'not-modified'> {
    const wait = Math.max(0, Math.floor(waitSeconds ?? 0));
    if (wait > 0) url.searchParams.set('wait', String(wait));
    const headers: Record<string, string> = { accept: 'application/json' };
    const { res, url: final } = await get(url, headers, wait * 1000, signal);
    if (res.statusCode === 304) {
      await res.body.dump();
      return 'not-modified';
    }
    if (res.statusCode !== 200) {
      const detail = await snippet(res);
      throw explain(res.statusCode, detail) ?? statusError(final, res.statusCode, detail);
    }
    let body: unknown;
    try {
      body = await res.body.json();
    } catch (err) {
      throw new PxeError('source-format', `[source:http] GET ${show(final)}: body is not JSON: ${describe(err)}`);
    }
    return { body, where: show(final) };
  }

  return {
    description: `http source ${show(base)}`,

    async changes(site, since, waitSeconds, signal): Promise<Changes | 'not-modified'> {
      const url = new URL('api/v1/changes', base);
      if (site !== null) url.searchParams.set('site', site);
      if (since !== null) url.searchParams.set('since', since);
      const got = await getDoc(url, waitSeconds, signal, (status, detail) =>
        // The fetcher answers 404 with code unknown-site for a site missing from its --sites.
        status === 404 && site !== null && detail.includes('"unknown-site"')
          ? new UnknownSiteError(
              `[source:http] GET ${show(url)}: site ${JSON.stringify(site)} is unknown to the fetcher (see its --sites): ${detail}`,
            )
          : null,
      );
      if (got === 'not-modified') return got;
      return parseChanges(got.body, got.where, site);
    },

    async openBlob(entry, offset, signal): Promise<AsyncIterable<Uint8Array>> {
      if (!/^[0-9a-f]{64}$/.test(entry.sha256)) {
        throw new PxeError('source-format', `[source:http] blob sha256 ${JSON.stringify(entry.sha256)} is not hex`);
      }
      const url = new URL(`api/v1/blobs/${entry.sha256}`, base);
      const headers: Record<string, string> = { accept: 'application/octet-stream' };
      if (offset > 0) headers['range'] = `bytes=${offset}-`;
      const { res, url: final } = await get(url, headers, 0, signal);
      if (offset > 0 && res.statusCode === 206) {
        const range = header(res, 'content-range') ?? '';
        if (!range.startsWith(`bytes ${offset}-`)) {
          await res.body.dump();
          throw statusError(final, 206, `Content-Range ${JSON.stringify(range)} does not start at byte ${offset}`);
        }
        return chunks(res, 0, final);
      }
      // A server that ignores Range sends the whole blob: skipping is safe because the agent hashes every byte.
      if (res.statusCode === 200) return chunks(res, offset, final);
      throw statusError(final, res.statusCode, await snippet(res));
    },

    async fileState(name, signal): Promise<SourceFileState | null> {
      // The name as a path (DESIGN.md: slashes not encoded); its components are URL-safe already.
      const url = new URL(`api/v1/files/${name.split('/').map(encodeURIComponent).join('/')}`, base);
      const { res, url: final } = await get(url, { accept: 'application/json' }, 0, signal);
      if (res.statusCode === 404) {
        await res.body.dump();
        return null;
      }
      if (res.statusCode !== 200) throw statusError(final, res.statusCode, await snippet(res));
      const body = (await res.body.json().catch(() => null)) as { state?: unknown; version?: unknown } | null;
      const state = body?.state;
      const version = typeof body?.version === 'string' ? body.version : null;
      if (state === 'fetching' || state === 'ready' || state === 'failed' || state === 'nfs-noop')
        return { state, version };
      throw new PxeError('source-format', `[source:http] GET ${show(final)}: no known "state"`);
    },

    async report(report: SiteReport, signal?: AbortSignal): Promise<void> {
      const url = new URL(`api/v1/sites/${encodeURIComponent(report.site)}/report`, base);
      const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'pxecache-agent' };
      if (opts.token !== undefined) headers['authorization'] = `Bearer ${opts.token}`;
      let res: Response;
      try {
        res = await request(url, {
          method: 'POST',
          headers,
          body: JSON.stringify(report),
          signal: signal ?? null,
          headersTimeout,
          bodyTimeout,
          ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
        });
      } catch (err) {
        signal?.throwIfAborted();
        throw new PxeError('source-unreachable', `[source:http] POST ${show(url)}: ${describe(err)}`, { cause: err });
      }
      if (res.statusCode === 204 || res.statusCode === 200) return void (await res.body.dump());
      throw new SourceStatusError(`${show(url)}`, res.statusCode, await snippet(res), 'POST');
    },
  };
}

async function* chunks(res: Response, skip: number, url: URL): AsyncIterable<Uint8Array> {
  let toSkip = skip;
  let count = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      count += chunk.byteLength;
      if (toSkip >= chunk.byteLength) {
        toSkip -= chunk.byteLength;
        continue;
      }
      yield toSkip > 0 ? chunk.subarray(toSkip) : chunk;
      toSkip = 0;
    }
  } catch (err) {
    throw new PxeError(
      'source-read',
      `[source:http] GET ${show(url)}: body failed after ${count} bytes: ${describe(err)}`,
      {
        cause: err,
      },
    );
  }
}

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The start of an error body, for the message: servers explain 401/403/404 there. */
async function snippet(res: Response): Promise<string> {
  try {
    const text = (await res.body.text()).trim().replace(/\s+/g, ' ');
    return text.length > 200 ? `${text.slice(0, 200)}...` : text;
  } catch {
    return '';
  }
}

/** The fetcher answered with a status the agent cannot use (401 bad token, 404 unknown blob, 5xx, ...). */
export class SourceStatusError extends PxeError {
  readonly url: string;
  readonly status: number;
  constructor(url: string, status: number, detail: string, method = 'GET') {
    super('source-status', `[source:http] ${method} ${url}: ${status}${detail ? ` ${detail}` : ''}`);
    this.url = url;
    this.status = status;
  }
}

function statusError(url: URL, status: number, detail: string): SourceStatusError {
  return new SourceStatusError(show(url), status, detail);
}

/** The URL without credentials or query signatures (presigned S3 URLs carry them in the query). */
function show(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}${url.search && url.searchParams.has('wait') ? url.search : ''}`;
}

function parseChanges(body: unknown, where: string, site: string | null): Changes {
  const doc = (body ?? {}) as Record<string, unknown>;
  const fail = (what: string) => new PxeError('source-format', `[source:http] GET ${where}: ${what}`);
  if (typeof doc['cursor'] !== 'string' || doc['cursor'] === '') throw fail('no "cursor" string');
  if (typeof doc['complete'] !== 'boolean') throw fail('no "complete" boolean');
  if ((doc['site'] ?? null) !== site) throw fail(`answered for site ${JSON.stringify(doc['site'])}`);
  return {
    cursor: doc['cursor'],
    complete: doc['complete'],
    site,
    files: parseEntries(doc['files'], where),
    configs: site === null ? [] : parseConfigEntries(doc['configs'], where),
  };
}

function parseEntries(entries: unknown, where: string): CatalogEntry[] {
  if (!Array.isArray(entries)) throw new PxeError('source-format', `[source:http] GET ${where}: no "files" array`);
  return entries.map((e: unknown, i) => {
    const o = (e ?? {}) as Record<string, unknown>;
    const bad = [
      ...['name', 'version', 'sha256', 'basename', 'url', 'fetchedAt', 'key'].filter((k) => typeof o[k] !== 'string'),
      ...['generation', 'size'].filter((k) => typeof o[k] !== 'number'),
      ...(Array.isArray(o['versions']) && o['versions'].every((v) => typeof v === 'string') ? [] : ['versions']),
    ];
    if (bad.length)
      throw new PxeError('source-format', `[source:http] GET ${where}: files[${i}] bad ${bad.join(', ')}`);
    return o as unknown as CatalogEntry;
  });
}

function parseConfigEntries(entries: unknown, where: string): ConfigEntry[] {
  if (!Array.isArray(entries)) throw new PxeError('source-format', `[source:http] GET ${where}: no "configs" array`);
  return entries.map((e: unknown, i) => {
    const o = (e ?? {}) as Record<string, unknown>;
    const bad = [
      ...['path', 'sha256', 'key', 'updatedAt'].filter((k) => typeof o[k] !== 'string'),
      ...(typeof o['size'] === 'number' ? [] : ['size']),
      ...(typeof o['deleted'] === 'boolean' ? [] : ['deleted']),
    ];
    if (bad.length)
      throw new PxeError('source-format', `[source:http] GET ${where}: configs[${i}] bad ${bad.join(', ')}`);
    const { path, deleted, sha256, size, key, updatedAt } = o as unknown as ConfigEntry;
    return { path, deleted, sha256, size, key, updatedAt };
  });
}
