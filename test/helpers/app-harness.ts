/**
 * The Node wiring of `pxecache serve` built in-process for route tests: a file store in a fresh temp dir (never
 * `memory:` in integration tests), createNodeFetcher (undici upstream, node:crypto), createApp. Each route test runs
 * through both transports (STYLE.md "Tests"): `app.request()` and a real @hono/node-server socket on port 0.
 */
import { serve } from '@hono/node-server';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuthSettings } from '../../src/core/auth.js';
import type { Fetcher } from '../../src/core/fetcher.js';
import type { LogFields, Logger } from '../../src/core/ports.js';
import { createApp } from '../../src/http/app.js';
import type { ClientCertificate } from '../../src/http/deps.js';
import { createNodeAppDeps } from '../../src/runtime/node/app-deps.js';
import type { UpstreamSettings } from '../../src/runtime/node/fetcher-deps.js';
import { parseSites } from '../../src/core/sites.js';
import { createFileStore } from '../../src/storage/file-store.js';
import type { ObjectStore } from '../../src/storage/object-store.js';

export type TransportName = 'app.request' | 'socket';
export const TRANSPORTS: readonly TransportName[] = ['app.request', 'socket'];

export interface HarnessOptions {
  readonly transport: TransportName;
  readonly serverName?: string;
  /** `--sites` spec: more virtual smart proxies besides the default site. */
  readonly sites?: string;
  readonly catalogPollMs?: number;
  readonly settings?: Partial<UpstreamSettings>;
  /** Share an existing store directory (a second instance); the creator of the directory removes it. */
  readonly storeDir?: string;
  /** Wraps the file store (fault injection, see store-gates.ts). */
  readonly wrapStore?: (store: ObjectStore) => ObjectStore;
  /** Tokens and smart-proxy openness, as `serve` derives them from its options (default: none, loopback-only). */
  readonly auth?: AuthSettings;
  /**
   * `app.request` only (it has no socket): the peer address the app sees, read per request when a function (to play
   * several clients against one app). Default 127.0.0.1.
   */
  readonly remoteAddress?: string | (() => string);
  /** `app.request` only: the verified client certificate the app sees (as if on the HTTPS listener). Default none. */
  readonly clientCertificate?: ClientCertificate;
}

export interface Harness {
  readonly transport: TransportName;
  /** The origin requests go to (`http://localhost` for app.request), for Origin headers. */
  readonly origin: string;
  /** The temp dir holding the file store (removed by `close` unless it was given in the options). */
  readonly storeDir: string;
  readonly store: ObjectStore;
  readonly fetcher: Fetcher;
  readonly logs: { level: string; msg: string; fields?: LogFields }[];
  /**
   * Resolves once every fetch submitted so far has finished (its `done` settled). Unlike polling the status, this
   * cannot stop early on an intermediate state; `close` uses it so no job outlives its store directory.
   */
  idle(timeoutMs?: number): Promise<void>;
  /** One HTTP exchange with the app, through the chosen transport. `path` starts with "/". */
  request(path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

/** Upstream settings for tests: short timeouts, defaults otherwise. */
export const TEST_SETTINGS: UpstreamSettings = {
  'verify-tls': true,
  'connect-timeout': 5,
  'headers-timeout': 10,
  'idle-timeout': 10,
  'max-redirects': 5,
  'keep-versions': 3,
  'lease-ttl': 30,
};

export async function createHarness(opts: HarnessOptions): Promise<Harness> {
  const ownsDir = opts.storeDir === undefined;
  const storeDir = opts.storeDir ?? (await mkdtemp(join(tmpdir(), 'pxecache-it-store-')));
  const fileStore = createFileStore({ root: storeDir });
  const store = opts.wrapStore ? opts.wrapStore(fileStore) : fileStore;
  const logs: Harness['logs'] = [];
  const log =
    (level: string) =>
    (msg: string, fields?: LogFields): void =>
      void logs.push(fields ? { level, msg, fields } : { level, msg });
  const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  const { deps, close: closeUpstream } = createNodeAppDeps({
    store,
    settings: { ...TEST_SETTINGS, ...opts.settings },
    logger,
    sites: parseSites(opts.sites ?? '', opts.serverName ?? ''),
    catalogPollMs: opts.catalogPollMs ?? 500,
    ...(opts.auth ? { auth: opts.auth } : {}),
  });
  const inner = deps.fetcher;
  // Observes every submission (behaviour unchanged) so tests can wait for jobs to end instead of guessing.
  const inflight = new Set<Promise<unknown>>();
  const fetcher: Fetcher = {
    ...inner,
    async submit(request) {
      const submitted = await inner.submit(request);
      const done = submitted.done.catch(() => undefined);
      inflight.add(done);
      void done.finally(() => inflight.delete(done));
      return submitted;
    },
  };
  async function idle(timeoutMs = 10_000) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`fetch jobs still running after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      while (inflight.size > 0) await Promise.race([Promise.allSettled([...inflight]), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
  const remote = opts.remoteAddress ?? '127.0.0.1';
  const certificate = opts.clientCertificate ?? null;
  const app = createApp(
    opts.transport === 'app.request'
      ? {
          ...deps,
          fetcher,
          remoteAddress: typeof remote === 'string' ? () => remote : remote,
          clientCertificate: () => certificate,
        }
      : { ...deps, fetcher },
  );

  let request: Harness['request'];
  let origin = 'http://localhost';
  let closeServer = async () => {};
  if (opts.transport === 'app.request') {
    request = async (path, init) => app.request(path, init);
  } else {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
    const { port } = server.address() as AddressInfo;
    const base = `http://127.0.0.1:${port}`;
    origin = base;
    request = (path, init) => fetch(base + path, init);
    closeServer = async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await closed;
    };
  }

  return {
    transport: opts.transport,
    origin,
    storeDir,
    store,
    fetcher,
    logs,
    idle,
    request,
    async close() {
      await closeServer();
      await idle().catch(() => undefined);
      await closeUpstream();
      if (ownsDir) await rm(storeDir, { recursive: true, force: true });
    },
  };
}

/** Every path under `dir`, relative and sorted; directories end with "/". Empty when `dir` does not exist. */
export async function listTree(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true });
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return [];
    throw err;
  }
  return entries.map((e) => join(e.parentPath, e.name).slice(dir.length + 1) + (e.isDirectory() ? '/' : '')).sort();
}
