import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { ChangeSignal } from '../../core/changes.js';
import { createFetcher, type Fetcher } from '../../core/fetcher.js';
import type { Logger, UpstreamClient } from '../../core/ports.js';
import { systemClock } from '../../core/ports.js';
import { nodeUrlPolicy } from '../../core/url-policy.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { createFtpUpstream } from './ftp-upstream.js';
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

/** The core fetcher wired with Node capabilities (undici and basic-ftp for ftp://, node:crypto, the system clock). */
export function createNodeFetcher(
  store: ObjectStore,
  settings: UpstreamSettings,
  logger: Logger,
  changes?: ChangeSignal,
): { fetcher: Fetcher; close(): Promise<void> } {
  const http = createUndiciUpstream({
    verifyTls: settings['verify-tls'],
    connectTimeoutMs: settings['connect-timeout'] * 1000,
    headersTimeoutMs: settings['headers-timeout'] * 1000,
    bodyIdleTimeoutMs: settings['idle-timeout'] * 1000,
  });
  const ftp = createFtpUpstream({
    verifyTls: settings['verify-tls'],
    connectTimeoutMs: settings['connect-timeout'] * 1000,
    idleTimeoutMs: settings['idle-timeout'] * 1000,
  });
  const upstream: UpstreamClient = {
    request: (req) => (req.url.protocol === 'ftp:' ? ftp : http).request(req),
  };
  const fetcher = createFetcher({
    store,
    upstream,
    hasher: nodeSha256,
    clock: systemClock,
    logger,
    newId: randomUUID,
    policy: nodeUrlPolicy,
    maxRedirects: settings['max-redirects'],
    keepVersions: settings['keep-versions'],
    userAgent: `pxecache/${VERSION}`,
    instanceId: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    leaseTtlMs: settings['lease-ttl'] * 1000,
    followPollMs: 100,
    ...(changes ? { changes } : {}),
  });
  return {
    fetcher,
    async close() {
      await Promise.all([http.close(), ftp.close()]);
    },
  };
}
