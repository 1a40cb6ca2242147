import { Hono, type Context } from 'hono';
import { readCatalog } from '../core/catalog.js';
import { InputError, NotFoundError } from '../core/errors.js';
import type { FetchRequest } from '../core/fetcher.js';
import { keys } from '../core/object-keys.js';
import { sleep } from '../core/ports.js';
import { getJson } from '../storage/object-store.js';
import type { AppDeps } from './deps.js';
import { failedFetchStatus } from './errors.js';
import { readParams } from './params.js';
import { parseRange } from './range.js';
import { toReadableStream } from './streams.js';

const MAX_WAIT_S = 300;

export function apiV1Routes(deps: AppDeps): Hono {
  const app = new Hono();

  app.get('/files', (c) => longPoll(c, () => readCatalog(deps.store, deps.hasher)));

  app.get('/sites/:site/configs', (c) => {
    const site = deps.sites.find((s) => s.name === c.req.param('site'));
    if (!site)
      throw new NotFoundError(
        `no site "${c.req.param('site')}" (configured: ${deps.sites.map((s) => s.name).join(', ')})`,
      );
    return longPoll(c, () => deps.configs.catalog(site.name));
  });

  /** ETag/304 and `?wait=<s>`: hold the request until the document changes (local publish or poll), then answer. */
  async function longPoll(c: Context, read: () => Promise<{ etag: string }>) {
    const wait = waitSeconds(c.req.query('wait'));
    const known = c.req.header('if-none-match') ?? null;
    const deadline = deps.clock.now() + wait * 1000;
    for (;;) {
      const doc = await read();
      c.header('ETag', doc.etag);
      c.header('Cache-Control', 'no-cache');
      if (doc.etag !== known) return c.json(doc);
      const left = deadline - deps.clock.now();
      if (left <= 0) return c.body(null, 304);
      const wake = new AbortController();
      await Promise.race([
        deps.fetcher.nextPublish(wake.signal),
        sleep(Math.min(left, deps.catalogPollMs), wake.signal),
      ]);
      wake.abort();
    }
  }

  app.get('/files/*', async (c) => {
    const name = nameFromPath(c.req.path, '/api/v1/files/');
    const status = await deps.fetcher.status(name);
    if (!status) throw new NotFoundError(`no file named "${name}"`);
    return c.json(status);
  });

  app.get('/blobs/:sha256', async (c) => {
    const sha256 = c.req.param('sha256');
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new InputError('sha256', 'must be 64 lowercase hex digits');
    const index = await getJson<{ key: string; size: number }>(deps.store, keys.blob(sha256));
    if (!index) throw new NotFoundError(`no blob ${sha256}`);
    const etag = `"${sha256}"`;
    c.header('ETag', etag);
    c.header('Accept-Ranges', 'bytes');
    c.header('Cache-Control', 'public, max-age=31536000, immutable');
    if (c.req.header('if-none-match') === etag) return c.body(null, 304);
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
      return c.body(toReadableStream(object.body), 200);
    }
    const length = range.length ?? index.size - range.offset;
    c.header('Content-Length', String(length));
    c.header('Content-Range', `bytes ${range.offset}-${range.offset + length - 1}/${index.size}`);
    return c.body(toReadableStream(object.body), 206);
  });

  app.post('/fetch', async (c) => {
    const wait = waitSeconds(c.req.query('wait'));
    const params = await readParams(c);
    const request = fetchRequest(params);
    const submitted = await deps.fetcher.submit(request);
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

function fetchRequest(params: Record<string, string | undefined>): FetchRequest {
  const { prefix, path, name, url } = params;
  if (prefix !== undefined || path !== undefined) {
    if (!prefix) throw new InputError('prefix', 'is required with "path"');
    if (!path) throw new InputError('path', 'is required with "prefix"');
    return { prefix, path };
  }
  if (!name) throw new InputError('name', 'is required (send {prefix, path} or {name, url})');
  if (!url) throw new InputError('url', 'is required with "name"');
  return { name, url };
}

function waitSeconds(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 0;
  if (!/^\d+(\.\d+)?$/.test(raw)) throw new InputError('wait', `"${raw.slice(0, 20)}" is not a number of seconds`);
  return Math.min(Number(raw), MAX_WAIT_S);
}

export function nameFromPath(path: string, prefix: string): string {
  try {
    return decodeURIComponent(path.slice(prefix.length));
  } catch {
    throw new InputError('name', 'has invalid percent-encoding');
  }
}
