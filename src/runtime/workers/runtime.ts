import type { Context, Hono } from 'hono';
import { commonNameOf, type AuthSettings } from '../../core/auth.js';
import { createFailureLimiter, type FailureLimiter } from '../../core/auth-failures.js';
import { createBootConfigs } from '../../core/boot-configs.js';
import { createCatalogRefresher } from '../../core/catalog-refresher.js';
import { createChangeSignal } from '../../core/changes.js';
import { compactEvents } from '../../core/events.js';
import { createFetcher, type DispatchedJob, type Fetcher } from '../../core/fetcher.js';
import { withHostLists } from '../../core/host-rules.js';
import { sweepExpiredLeases } from '../../core/leases.js';
import { createMetrics, type Metrics } from '../../core/metrics.js';
import { systemClock, type Logger } from '../../core/ports.js';
import { parseSites } from '../../core/sites.js';
import { defaultUrlPolicy } from '../../core/url-policy.js';
import { createApp } from '../../http/app.js';
import type { ClientCertificate } from '../../http/deps.js';
import { createR2Store } from '../../storage/r2-store.js';
import { parseWorkersConfig, workersAuth, type WorkersConfig } from './config.js';
import { workersMd5, workersSha256 } from './hasher.js';
import { createWorkersLogger } from './logger.js';
import { createResumableIngest } from './resumable-ingest.js';
import { createFetchUpstream } from './upstream.js';
import { startWorkflow } from './workflow-dispatch.js';
import pkg from '../../../package.json' with { type: 'json' };

export interface WorkersEnv {
  /** Versions, pointers, statuses and the catalog (wrangler.toml `[[r2_buckets]]`). */
  readonly PXECACHE_BUCKET: R2Bucket;
  /** Runs fetch jobs past the 30 s an invocation lives after its response (`[[workflows]]`). */
  readonly FETCH_WORKFLOW: Workflow<DispatchedJob>;
  readonly [variable: string]: unknown;
}

export interface WorkersRuntime {
  readonly app: Hono;
  readonly fetcher: Fetcher;
  readonly logger: Logger;
  /** The cron trigger's upkeep: the catalog snapshot read in full, the change log trimmed, dead leases removed. */
  maintain(): Promise<void>;
}

/** Publications within this long share one catalog snapshot refresh (flushed anyway when a Workflow step ends). */
const SNAPSHOT_DELAY_MS = 2_000;

/** What can be shared by every request of an isolate: data only (bindings and variables are constant for its life). */
let settled: {
  env: WorkersEnv;
  config: WorkersConfig;
  auth: AuthSettings;
  metrics: Metrics;
  authFailures: FailureLimiter;
} | null = null;

/**
 * The app and its capabilities for ONE request or Workflow step. workerd ties every promise and stream to the
 * request that created it: one request awaiting another's (a shared coalescing table, a refresher's queue, a batch
 * timer) hangs until that other request ends, which for a Workflow downloading an ISO is minutes. So nothing with
 * state in flight is shared; coalescing across requests is the store's lease, as across instances. Only the parsed
 * settings and the counters (plain data, no promises) live as long as the isolate. Throws ConfigError naming each bad variable.
 */
export function workersRuntime(env: WorkersEnv): WorkersRuntime {
  if (settled?.env !== env) {
    const config = parseWorkersConfig(env);
    const auth = workersAuth(config);
    // Counters per address, shared by the isolate's requests: a guesser is slowed per isolate (a Cloudflare
    // rate-limiting rule covers every isolate).
    const authFailures = createFailureLimiter({ limit: auth.failureLimit, windowMs: 60_000, clock: systemClock });
    settled = { env, config, auth, metrics: createMetrics(), authFailures };
  }
  const { config, auth, metrics, authFailures } = settled;
  const logger = createWorkersLogger(config['log-level']);
  const store = createR2Store(env.PXECACHE_BUCKET);
  const policy = withHostLists(defaultUrlPolicy, { allow: config['upstream-allow'], deny: config['upstream-deny'] });
  const changes = createChangeSignal();
  const catalog = createCatalogRefresher({ store, clock: systemClock, logger, delayMs: SNAPSHOT_DELAY_MS });
  const newId = () => crypto.randomUUID();
  const leaseTtlMs = config['lease-ttl'] * 1000;
  const fetcher = createFetcher({
    store,
    catalog,
    metrics,
    changes,
    upstream: createFetchUpstream({
      headersTimeoutMs: config['headers-timeout'] * 1000,
      bodyIdleTimeoutMs: config['idle-timeout'] * 1000,
    }),
    hasher: workersSha256,
    md5: workersMd5,
    // Downloads continue after a cut (a reset, an evicted step) from their last stored part, same version only.
    resumable: createResumableIngest({ bucket: env.PXECACHE_BUCKET, hasher: workersSha256, logger }),
    clock: systemClock,
    logger,
    newId,
    policy,
    maxRedirects: config['max-redirects'],
    fetchTimeoutMs: config['fetch-timeout'] * 1000,
    keepVersions: config['keep-versions'],
    userAgent: `pxecache/${pkg.version}`,
    instanceId: `worker:${newId().slice(0, 8)}`,
    leaseTtlMs,
    followPollMs: 250,
    // Written at once (flushed before the request ends): there is no later batch in a per-request fetcher.
    checkBatchMs: 0,
    dispatch: (job) => startWorkflow(env.FETCH_WORKFLOW, job, logger),
  });
  const configs = createBootConfigs({ store, hasher: workersSha256, clock: systemClock, newId, changes });
  const app = createApp({
    fetcher,
    metrics,
    configs,
    store,
    hasher: workersSha256,
    clock: systemClock,
    logger,
    version: pkg.version,
    sites: parseSites(config.sites, config['server-name']),
    // The platform terminates TLS: to smart-proxy's /v2/features this is an HTTPS proxy.
    httpEnabled: false,
    httpsEnabled: true,
    catalogPollMs: 1000,
    keepVersions: config['keep-versions'],
    auth,
    authFailures,
    createOnly: null,
    // A revalidation answers before upstream does; its conditional GET (and the dispatch of a changed file) must
    // outlive the response. Following a dispatched job is cut off after 30 s, which costs nothing: it only waits.
    background: (c, work) => c.executionCtx.waitUntil(work),
    sizedBody: (body, length) => body.pipeThrough(new FixedLengthStream(length)),
    remoteAddress: (c) => c.req.header('cf-connecting-ip'),
    clientCertificate: cloudflareClientCertificate,
  });
  const maintain = async () => {
    await catalog.full();
    await compactEvents(store);
    await sweepExpiredLeases(store, systemClock, leaseTtlMs);
  };
  return { app, fetcher, logger, maintain };
}

/**
 * The certificate a Cloudflare mTLS rule verified (`request.cf.tlsClientAuth`); null when none was presented or it
 * did not verify against the uploaded CA. The CN comes from the RFC 2253 subject (`CN=foreman.example.com,O=...`).
 */
function cloudflareClientCertificate(c: Context): ClientCertificate | null {
  const cf = (c.req.raw as { cf?: { tlsClientAuth?: { certVerified?: string; certSubjectDN?: string } } }).cf;
  const auth = cf?.tlsClientAuth;
  if (auth?.certVerified !== 'SUCCESS') return null;
  return { cn: commonNameOf(auth.certSubjectDN ?? '') };
}
