/**
 * The fetcher as a Cloudflare Worker in real workerd, through wrangler's `unstable_startWorker` (in-process, the
 * inspector off: it slows streaming about tenfold), from the top-level wrangler.toml: the R2 bucket, the Workflow and
 * the cron trigger as deployed. Local R2 and Workflow state persist under `persist`, so a test can read what the
 * Worker stored after disposing it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tokenListEntry, type Scope } from '../../src/core/auth.js';
import { sha256 } from './api.js';

const CONFIG = fileURLToPath(new URL('../../wrangler.toml', import.meta.url));

export interface TestWorker {
  readonly url: string;
  /** Raw bearer tokens, by scope, that the Worker accepts (configured as the PXECACHE_TOKENS secret). */
  readonly tokens: Readonly<Record<Scope, string>>;
  /** Where the Worker's local R2 and Workflow state live. */
  readonly persist: string;
  /** `fetch` against the Worker; `identity` encoding unless asked otherwise (workerd gzips for Node's fetch). */
  request(path: string, init?: RequestInit): Promise<Response>;
  /** Stops workerd (once) and removes the state (unless `keep`). */
  dispose(opts?: { keep?: boolean }): Promise<void>;
}

/** `vars`: extra PXECACHE_* variables, as `[vars]` or secrets would set them. */
export async function startTestWorker(vars: Record<string, string> = {}): Promise<TestWorker> {
  // No telemetry and no cf-object download from the network (the machine has none).
  process.env['WRANGLER_SEND_METRICS'] = 'false';
  process.env['CLOUDFLARE_CF_FETCH_ENABLED'] = 'false';
  const { unstable_startWorker } = await import('wrangler');
  const persist = await mkdtemp(join(tmpdir(), 'pxecache-worker-'));
  const tokens = { read: 'pxc_worker-read', fetch: 'pxc_worker-fetch', admin: 'pxc_worker-admin' };
  const list = Object.entries(tokens)
    .map(([scope, token]) => tokenListEntry({ id: `t-${scope}`, sha256: sha256(token), scopes: [scope as Scope] }))
    .join(',');
  const plain = (value: string) => ({ type: 'plain_text' as const, value });
  const bindings = Object.fromEntries(
    Object.entries({ PXECACHE_TOKENS: list, ...vars }).map(([k, v]) => [k, plain(v)]),
  );
  const worker = await unstable_startWorker({
    config: CONFIG,
    bindings,
    dev: {
      server: { hostname: '127.0.0.1', port: 0 },
      inspector: false,
      persist,
      watch: false,
      logLevel: 'warn',
    },
  });
  await worker.ready;
  const url = (await worker.url).href.replace(/\/$/, '');
  let disposed: Promise<void> | undefined;
  return {
    url,
    tokens,
    persist,
    request(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has('accept-encoding')) headers.set('accept-encoding', 'identity');
      return fetch(url + path, { ...init, headers });
    },
    async dispose(opts = {}) {
      // Idempotent: a test may stop the Worker to read its storage, and the suite's afterAll stops it again.
      disposed ??= worker.dispose();
      await disposed;
      if (!opts.keep) await rm(persist, { recursive: true, force: true });
    },
  };
}

/**
 * The R2 bucket a disposed test Worker left under `persist`, opened by a separate miniflare: what the Worker really
 * stored, read without going through its routes. Close it when done.
 */
export async function openPersistedBucket(persist: string) {
  const { Miniflare } = await import('miniflare');
  const mf = new Miniflare({
    modules: true,
    script: 'export default { fetch() { return new Response(null, { status: 404 }); } }',
    r2Buckets: { BUCKET: 'pxecache' },
    r2Persist: join(persist, 'v3', 'r2'),
  });
  const bucket = await mf.getR2Bucket('BUCKET');
  return { bucket, close: () => mf.dispose() };
}
