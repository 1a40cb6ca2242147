import { randomUUID } from 'node:crypto';
import { noAuth, type AuthSettings } from '../../core/auth.js';
import { createBootConfigs } from '../../core/boot-configs.js';
import { createChangeSignal } from '../../core/changes.js';
import type { Logger } from '../../core/ports.js';
import { systemClock } from '../../core/ports.js';
import type { Site } from '../../core/sites.js';
import type { FetcherDeps } from '../../core/fetcher.js';
import type { AppDeps } from '../../http/app.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { nodeRemoteAddress } from './auth.js';
import { createNodeFetcher, type UpstreamSettings } from './fetcher-deps.js';
import { nodeSha256 } from './hasher.js';
import { nodeClientCertificate } from './tls.js';
import { VERSION } from './version.js';

/** Everything createApp needs, wired with Node capabilities; shared by `serve` and the route tests. */
export function createNodeAppDeps(opts: {
  store: ObjectStore;
  settings: UpstreamSettings;
  logger: Logger;
  sites: readonly Site[];
  /** Default: HTTP only. */
  httpEnabled?: boolean;
  httpsEnabled?: boolean;
  catalogPollMs?: number;
  /** Default: no tokens, smart-proxy routes loopback-only, no trusted client certificate. */
  auth?: AuthSettings;
  createOnly?: { readonly honoured: boolean; readonly detail: string } | null;
  /** Keep the catalog snapshot fresh in the background (`serve`; route tests leave the store to themselves). */
  maintainCatalog?: boolean;
  /** Runtime hooks beyond a Node server's: where jobs run, background work, blob redirects (Lambda). */
  hooks?: Partial<Pick<AppDeps, 'background' | 'blobRedirect' | 'remoteAddress' | 'clientCertificate'>> & {
    dispatch?: FetcherDeps['dispatch'];
  };
}): { deps: AppDeps; close(): Promise<void> } {
  const changes = createChangeSignal();
  const dispatch = opts.hooks?.dispatch;
  const { fetcher, metrics, close, maintainCatalog } = createNodeFetcher(
    opts.store,
    opts.settings,
    opts.logger,
    changes,
    dispatch ? { dispatch } : {},
  );
  if (opts.maintainCatalog) maintainCatalog();
  const configs = createBootConfigs({
    store: opts.store,
    hasher: nodeSha256,
    clock: systemClock,
    newId: randomUUID,
    changes,
  });
  const deps: AppDeps = {
    fetcher,
    metrics,
    configs,
    store: opts.store,
    hasher: nodeSha256,
    clock: systemClock,
    logger: opts.logger,
    version: VERSION,
    sites: opts.sites,
    httpEnabled: opts.httpEnabled ?? true,
    httpsEnabled: opts.httpsEnabled ?? false,
    catalogPollMs: opts.catalogPollMs ?? 500,
    keepVersions: opts.settings['keep-versions'],
    auth: opts.auth ?? noAuth(),
    createOnly: opts.createOnly ?? null,
    ...(opts.hooks?.background ? { background: opts.hooks.background } : {}),
    ...(opts.hooks?.blobRedirect ? { blobRedirect: opts.hooks.blobRedirect } : {}),
    remoteAddress: opts.hooks?.remoteAddress ?? nodeRemoteAddress,
    clientCertificate: opts.hooks?.clientCertificate ?? nodeClientCertificate,
  };
  return { deps, close };
}
