import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { createFetcher, type Fetcher } from '../../core/fetcher.js';
import type { Logger } from '../../core/ports.js';
import { systemClock } from '../../core/ports.js';
import { defaultUrlPolicy } from '../../core/url-policy.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { nodeSha256 } from './hasher.js';
import { createUndiciUpstream } from './upstream.js';
import { VERSION } from './version.js';

export interface UpstreamSettings {
  readonly 'verify-tls': boolean;
  readonly 'connect-timeout': number;
  readonly 'headers-timeout': number;
  readonly 'idle-timeout': number;
  readonly 'max-redirects': number;
  readonly 'keep-versions': number;
  readonly 'lease-ttl': number;
}

/** The core fetcher wired with Node capabilities (undici, node:crypto, the system clock). */
export function createNodeFetcher(
  store: ObjectStore,
  settings: UpstreamSettings,
  logger: Logger,
): { fetcher: Fetcher; close(): Promise<void> } {
  const upstream = createUndiciUpstream({
    verifyTls: settings['verify-tls'],
    connectTimeoutMs: settings['connect-timeout'] * 1000,
    headersTimeoutMs: settings['headers-timeout'] * 1000,
    bodyIdleTimeoutMs: settings['idle-timeout'] * 1000,
  });
  const fetcher = createFetcher({
    store,
    upstream,
    hasher: nodeSha256,
    clock: systemClock,
    logger,
    newId: randomUUID,
    policy: defaultUrlPolicy,
    maxRedirects: settings['max-redirects'],
    keepVersions: settings['keep-versions'],
    userAgent: `pxecache/${VERSION}`,
    instanceId: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    leaseTtlMs: settings['lease-ttl'] * 1000,
    followPollMs: 100,
  });
  return { fetcher, close: () => upstream.close() };
}
