import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { ChangeSignal } from '../../core/changes.js';
import { describe } from '../../core/errors.js';
import { createCatalogRefresher } from '../../core/catalog-refresher.js';
import { compactEvents } from '../../core/events.js';
import type { Metrics } from '../../core/metrics.js';
import { createNodeMetrics } from './metrics.js';
import { createFetcher, type Fetcher, type FetcherDeps } from '../../core/fetcher.js';
import { sweepExpiredLeases } from '../../core/leases.js';
import { withHostLists } from '../../core/host-rules.js';
import type { Logger, UpstreamClient } from '../../core/ports.js';
import { systemClock } from '../../core/ports.js';
import { redactUrl } from '../../core/redact.js';
import { nodeUrlPolicy } from '../../core/url-policy.js';
import type { ObjectStore } from '../../storage/object-store.js';
import type { Resolver } from './guarded-lookup.js';
import { nodeMd5, nodeSha256 } from './hasher.js';
import { createUndiciUpstream } from './upstream.js';
import { proxyFromEnv, readCaFile } from './upstream-dispatcher.js';
import { VERSION } from './version.js';

export interface UpstreamSettings {
  readonly 'verify-tls': boolean;
  readonly 'connect-timeout': number;
  readonly 'headers-timeout': number;
  readonly 'idle-timeout': number;
  /** Optional for callers built before it existed (tests): default 7200 s, as the CLI's. */
  readonly 'fetch-timeout'?: number;
  readonly 'max-redirects': number;
  readonly 'keep-versions': number;
  readonly 'lease-ttl': number;
  /** Host lists of the upstream policy (core/host-rules.ts); empty or absent: the defaults. */
  readonly 'upstream-allow'?: string;
  readonly 'upstream-deny'?: string;
  readonly 'upstream-ca-file'?: string | undefined;
}

/** What a fetcher would otherwise take from the process: tests replace DNS and the proxy variables. */
export interface NodeFetcherEnvironment {
  /** Default: `process.env` (http_proxy, https_proxy, no_proxy and their upper-case forms). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Default: the system resolver. */
  readonly resolve?: Resolver;
  /** Where the jobs this process leads run (FetcherDeps.dispatch): Lambda hands them to another invocation. */
  readonly dispatch?: FetcherDeps['dispatch'];
  /** Each download's bytes as they arrive (`pxecache fetch` draws progress from them). */
  readonly onProgress?: FetcherDeps['onProgress'];
}

/** How often a fetcher trims the change log (core/events.ts) to its newest events; cheap when there is nothing to do. */
const COMPACT_EVERY_MS = 5 * 60_000;
/** Publications within this long share one catalog snapshot refresh (core/catalog-refresher.ts). */
const SNAPSHOT_DELAY_MS = 2_000;
/** How often a serving fetcher reads every name into the snapshot (announcing publications whose event was lost). */
const FULL_SNAPSHOT_EVERY_MS = 15 * 60_000;

/** The core fetcher wired with Node capabilities (undici and basic-ftp for ftp://, node:crypto, the system clock). */
export function createNodeFetcher(
  store: ObjectStore,
  settings: UpstreamSettings,
  logger: Logger,
  changes?: ChangeSignal,
  environment: NodeFetcherEnvironment = {},
): {
  fetcher: Fetcher;
  /** Counters of this process's fetch jobs (GET /metrics). */
  metrics: Metrics;
  /**
   * For a serving fetcher: the catalog snapshot refreshed now (read in full when there is none) and read in full
   * every 15 minutes. A one-shot fetch only updates an existing snapshot at close.
   */
  maintainCatalog(): void;
  close(): Promise<void>;
} {
  const policy = withHostLists(nodeUrlPolicy, {
    allow: settings['upstream-allow'] ?? '',
    deny: settings['upstream-deny'] ?? '',
  });
  const caFile = settings['upstream-ca-file'];
  const proxy = proxyFromEnv(environment.env ?? process.env);
  // Proxy URLs may carry credentials (`http://user:pass@proxy:3128`): logged without the password.
  for (const [name, value] of Object.entries(proxy))
    logger.info('upstream proxy from the environment', { [name]: name === 'noProxy' ? value : redactUrl(value) });
  const resolve = environment.resolve ? { resolve: environment.resolve } : {};
  const http = createUndiciUpstream({
    verifyTls: settings['verify-tls'],
    connectTimeoutMs: settings['connect-timeout'] * 1000,
    headersTimeoutMs: settings['headers-timeout'] * 1000,
    bodyIdleTimeoutMs: settings['idle-timeout'] * 1000,
    rules: policy,
    proxy,
    ...(caFile ? { extraCaPem: readCaFile(caFile) } : {}),
    ...resolve,
  });
  // basic-ftp is loaded on the first ftp:// fetch only: most sites never use it, and every module loaded at start
  // is resident memory for the life of the process.
  let ftp: Promise<UpstreamClient & { close(): Promise<void> }> | null = null;
  const ftpClient = () =>
    (ftp ??= import('./ftp-upstream.js').then((m) =>
      m.createFtpUpstream({
        verifyTls: settings['verify-tls'],
        connectTimeoutMs: settings['connect-timeout'] * 1000,
        idleTimeoutMs: settings['idle-timeout'] * 1000,
        rules: policy,
        ...resolve,
      }),
    ));
  const upstream: UpstreamClient = {
    request: async (req) => (req.url.protocol === 'ftp:' ? (await ftpClient()).request(req) : http.request(req)),
  };
  const catalog = createCatalogRefresher({ store, clock: systemClock, logger, delayMs: SNAPSHOT_DELAY_MS });
  const metrics = createNodeMetrics();
  const fetcher = createFetcher({
    store,
    catalog,
    metrics,
    upstream,
    hasher: nodeSha256,
    md5: nodeMd5,
    clock: systemClock,
    logger,
    newId: randomUUID,
    policy,
    maxRedirects: settings['max-redirects'],
    fetchTimeoutMs: (settings['fetch-timeout'] ?? 7200) * 1000,
    keepVersions: settings['keep-versions'],
    userAgent: `pxecache/${VERSION}`,
    instanceId: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    leaseTtlMs: settings['lease-ttl'] * 1000,
    followPollMs: 100,
    ...(changes ? { changes } : {}),
    ...(environment.dispatch ? { dispatch: environment.dispatch } : {}),
    ...(environment.onProgress ? { onProgress: environment.onProgress } : {}),
  });
  // Leases of holders that died (kill -9) mid-job, expired for a whole TTL more: nobody else removes them unless the
  // same name and URL is fetched again. In the background: they are already ignored, only their space matters.
  const sweeping = sweepExpiredLeases(store, systemClock, settings['lease-ttl'] * 1000).then(
    (removed) => (removed > 0 ? logger.info('expired leases removed', { removed }) : undefined),
    (err: unknown) =>
      logger.warn('removing expired leases failed; retried at the next start', { error: describe(err) }),
  );
  // Off the publish path on purpose: deleting thousands of events on S3 takes a while, and no publication (or
  // Foreman's config write) should wait for it. Several fetchers compacting at once is safe.
  let compacting: Promise<void> | null = null;
  const compactor = setInterval(() => {
    compacting ??= compactEvents(store)
      .then(
        (deleted) => (deleted > 0 ? logger.info('change log compacted', { deleted }) : undefined),
        (err: unknown) => logger.warn('change log compaction failed; retried later', { error: describe(err) }),
      )
      .finally(() => (compacting = null));
  }, COMPACT_EVERY_MS);
  compactor.unref();
  let fullSnapshots: ReturnType<typeof setInterval> | undefined;
  return {
    fetcher,
    metrics,
    maintainCatalog() {
      void catalog.refresh();
      fullSnapshots ??= setInterval(() => void catalog.full(), FULL_SNAPSHOT_EVERY_MS).unref();
    },
    async close() {
      clearInterval(compactor);
      clearInterval(fullSnapshots);
      await Promise.all([fetcher.flush(), http.close(), ftp?.then((c) => c.close()), compacting, sweeping]);
    },
  };
}
