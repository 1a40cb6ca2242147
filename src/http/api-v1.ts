import { Hono, type Context } from 'hono';
import { cursorEtag, readCatalog } from '../core/catalog.js';
import { waitForChanges, waitForCursor, type WaitOptions } from '../core/change-feed.js';
import { createHeadWatch } from '../core/changes.js';
import { InputError, NotFoundError } from '../core/errors.js';
import { formatCursor, parseCursor } from '../core/events.js';
import type { FetchRequest } from '../core/fetcher.js';
import { assertStorable, validateName } from '../core/naming.js';
import { keys } from '../core/object-keys.js';
import { findSite, type Site } from '../core/sites.js';
import { getJson } from '../storage/object-store.js';
import type { AppDeps } from './deps.js';
import { requestIdOf } from './request-id.js';
import { failedFetchStatus } from './errors.js';
import { readParams } from './params.js';
import { siteRoutes } from './sites.js';
import { parseRange } from './range.js';
import { fetchByName, fetchByPrefix, parseInput, sha256Param, siteParam, sinceParam, waitParam } from './schemas.js';
import { toReadableStream } from './streams.js';

export function apiV1Routes(deps: AppDeps): Hono {
  const app = new Hono();

  // One poll of the store per process for every waiting request, however many agents long-poll.
  const watch = createHeadWatch({
    store: deps.store,
    pollMs: deps.catalogPollMs,
    wake: (signal) => deps.fetcher.nextPublish(signal),
  });
  const waitOptions = (c: Context): WaitOptions => ({
    store: deps.store,
    watch,
    clock: deps.clock,
    waitMs: waitSeconds(c.req.query('wait')) * 1000,
  });

  /**
   * The change feed agents follow: `?since=<cursor>` answers only what changed after it (or 304 once `wait` runs
   * out with nothing new), no `since` (or one the log no longer reaches back to) answers everything with
   * `complete: true`. `site` adds that site's boot configs. The ETag is the cursor, so If-None-Match works too.
   */
  app.get('/changes', async (c) => {
    const siteName = c.req.query('site');
    const site = siteName === undefined ? null : siteNamed(parseInput(siteParam, siteName, 'site'), 'unknown-site');
    const since = sinceQuery(c);
    const opts = waitOptions(c);
    c.header('Cache-Control', 'no-cache');
    if (since === undefined) {
      // No cursor but a tag: the full document again once the log moved past the tag.
      const known = taggedCursor(c.req.header('if-none-match'));
      if (known !== null && (await waitForCursor(opts, known)) === 'unchanged') return notModified(c, known);
    }
    const got = await waitForChanges(opts, { since: since ?? null, site: site?.name ?? null });
    if (got === 'unchanged') return notModified(c, parseCursor(since ?? '') ?? 0);
    c.header('ETag', cursorEtag(got.cursor));
    return c.json(got);
  });

  /**
   * The boot-file catalog (DESIGN.md "Native contract"): everything, or with `?since=<cursor>` only the names that
   * changed after it (`complete: false`; `true` with everything when the log no longer reaches back to it). The
   * ETag is the change cursor, compared before any name is read, so a 304 costs O(1) store operations.
   */
  app.get('/files', async (c) => {
    const since = sinceQuery(c);
    const opts = waitOptions(c);
    c.header('Cache-Control', 'no-cache');
    if (since !== undefined) {
      const got = await waitForChanges(opts, { since, site: null });
      if (got === 'unchanged') return notModified(c, parseCursor(since) ?? 0);
      const etag = cursorEtag(got.cursor);
      c.header('ETag', etag);
      return c.json({ cursor: got.cursor, etag, complete: got.complete, entries: got.files });
    }
    const known = taggedCursor(c.req.header('if-none-match'));
    if (known !== null && (await waitForCursor(opts, known)) === 'unchanged') return notModified(c, known);
    const catalog = await readCatalog(deps.store);
    c.header('ETag', catalog.etag);
    return c.json({ ...catalog, complete: true });
  });

  app.route('/sites', siteRoutes(deps));

  app.get('/sites/:site/configs', async (c) => {
    const site = siteNamed(c.req.param('site'), 'not-found');
    const opts = waitOptions(c); // validates `wait` even when no If-None-Match makes it matter, as /files does
    c.header('Cache-Control', 'no-cache');
    const known = taggedCursor(c.req.header('if-none-match'));
    if (known !== null && (await waitForCursor(opts, known)) === 'unchanged') return notModified(c, known);
    const catalog = await deps.configs.catalog(site.name);
    c.header('ETag', catalog.etag);
    return c.json(catalog);
  });

  const siteNamed = (name: string, code: string): Site => findSite(deps.sites, name, code);

  function notModified(c: Context, cursor: number) {
    c.header('ETag', cursorEtag(formatCursor(cursor)));
    return c.body(null, 304);
  }

  app.get('/files/*', async (c) => {
    const name = nameFromPath(c.req.path, '/api/v1/files/');
    // Only a valid name can have a status; checked first because the name becomes a store key (regression: ".tmp-x"
    // reached the file store, which refused the key: a 503).
    validateName(name, 'name');
    assertStorable(name, 'name', deps.store.maxKeyBytes);
    const status = await deps.fetcher.status(name);
    if (!status) throw new NotFoundError(`no file named "${name}"`);
    return c.json(status);
  });

  const sized = (body: AsyncIterable<Uint8Array>, length: number) => {
    const stream = toReadableStream(body);
    return deps.sizedBody ? deps.sizedBody(stream, length) : stream;
  };

  app.get('/blobs/:sha256', async (c) => {
    const sha256 = parseInput(sha256Param, c.req.param('sha256'), 'sha256');
    const index = await getJson<{ key: string; size: number }>(deps.store, keys.blob(sha256));
    if (!index) throw new NotFoundError(`no blob ${sha256}`);
    const etag = `"${sha256}"`;
    c.header('ETag', etag);
    c.header('Accept-Ranges', 'bytes');
    c.header('Cache-Control', 'public, max-age=31536000, immutable');
    if (c.req.header('if-none-match') === etag) return c.body(null, 304);
    // The client follows with its own Range header: the store answers it, as it does for this route.
    if (deps.blobRedirect) return c.redirect(await deps.blobRedirect(index.key), 302);
    const range = parseRange(c.req.header('range'), index.size);
    if (range === 'unsatisfiable') {
      c.header('Content-Range', `bytes */${index.size}`);
      return c.body(null, 416);
    }
    const object = await deps.store.get(index.key, range ?? undefined);
    if (!object) throw new NotFoundError(`blob ${sha256} is indexed but its bytes are missing`);
    c.header('Content-Type', 'application/octet-stream');
    if (!range) {
      c.header('Content-Length', String(index.size));
      return c.body(sized(object.body, index.size), 200);
    }
    const length = range.length ?? index.size - range.offset;
    c.header('Content-Length', String(length));
    c.header('Content-Range', `bytes ${range.offset}-${range.offset + length - 1}/${index.size}`);
    return c.body(sized(object.body, length), 206);
  });

  app.post('/fetch', async (c) => {
    const wait = waitSeconds(c.req.query('wait'));
    const params = await readParams(c);
    // Either form, chosen by its fields, so the message names what the chosen form lacks.
    const byPrefix = params['prefix'] !== undefined || params['path'] !== undefined;
    const request: FetchRequest = parseInput(byPrefix ? fetchByPrefix : fetchByName, params);
    const submitted = await deps.fetcher.submit({ ...request, requestId: requestIdOf(c) });
    deps.background?.(c, submitted.started);
    if (wait === 0) return c.json(submitted.accepted, 202);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), wait * 1000)));
    const final = await Promise.race([submitted.done, timeout]);
    clearTimeout(timer);
    if (!final) {
      const current = await deps.fetcher.status(submitted.accepted.name);
      return c.json(current ?? submitted.accepted, 202);
    }
    if (final.state === 'failed') return c.json(final, failedFetchStatus(final.error?.code));
    return c.json(final, 200);
  });

  return app;
}

function sinceQuery(c: Context): string | undefined {
  const since = c.req.query('since');
  return since === undefined ? undefined : parseInput(sinceParam, since, 'since');
}

/** The cursor an If-None-Match names (`"42"` or `W/"42"`), or null (absent, `*`, or an ETag of another format). */
function taggedCursor(header: string | undefined): number | null {
  const tag = /^\s*(?:W\/)?"([^"]*)"\s*$/.exec(header ?? '')?.[1];
  return tag === undefined ? null : parseCursor(tag);
}

function waitSeconds(raw: string | undefined): number {
  return raw === undefined ? 0 : parseInput(waitParam, raw, 'wait');
}

export function nameFromPath(path: string, prefix: string): string {
  try {
    return decodeURIComponent(path.slice(prefix.length));
  } catch {
    throw new InputError('name', 'has invalid percent-encoding');
  }
}
