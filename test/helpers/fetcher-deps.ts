/** Core fetcher deps for unit tests: Node's hasher, the system clock, no logs, the default limits; `extra` overrides. */
import type { FetcherDeps } from '../../src/core/fetcher.js';
import type { UpstreamClient } from '../../src/core/ports.js';
import { silentLogger, systemClock } from '../../src/core/ports.js';
import { nodeUrlPolicy } from '../../src/core/url-policy.js';
import { nodeSha256 } from '../../src/runtime/node/hasher.js';
import { createUndiciUpstream } from '../../src/runtime/node/upstream.js';

/** The Node upstream client with 5 s limits, for a test upstream on loopback. */
export const loopbackClient = () =>
  createUndiciUpstream({ verifyTls: true, connectTimeoutMs: 5000, headersTimeoutMs: 5000, bodyIdleTimeoutMs: 5000 });

export function testFetcherDeps(
  store: FetcherDeps['store'],
  upstream: UpstreamClient,
  extra: Partial<FetcherDeps> = {},
): FetcherDeps {
  return {
    store,
    upstream,
    hasher: nodeSha256,
    clock: systemClock,
    logger: silentLogger,
    newId: () => crypto.randomUUID(),
    policy: nodeUrlPolicy,
    maxRedirects: 5,
    keepVersions: 3,
    userAgent: 'test',
    instanceId: 'test',
    leaseTtlMs: 30_000,
    followPollMs: 100,
    ...extra,
  };
}
