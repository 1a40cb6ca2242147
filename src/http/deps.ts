import type { Context } from 'hono';
import type { AuthSettings } from '../core/auth.js';
import type { BootConfigs } from '../core/boot-configs.js';
import type { Fetcher } from '../core/fetcher.js';
import type { Clock, HasherFactory, Logger } from '../core/ports.js';
import type { Site } from '../core/sites.js';
import type { ObjectStore } from '../storage/object-store.js';

export interface AppDeps {
  readonly fetcher: Fetcher;
  readonly store: ObjectStore;
  readonly hasher: HasherFactory;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly version: string;
  readonly configs: BootConfigs;
  /** The virtual smart proxies; the first is the default site (the unprefixed routes). */
  readonly sites: readonly Site[];
  readonly httpsEnabled: boolean;
  /** Catalog long-poll: how often to look for publications made by other processes. */
  readonly catalogPollMs: number;
  /** Bearer tokens for the native API and the smart-proxy loopback rule (http/auth.ts). */
  readonly auth: AuthSettings;
  /**
   * What the store's create-only probe found (s3:// stores), shown on /healthz; null when no probe ran (file and
   * memory stores guarantee create-only themselves).
   */
  readonly createOnly?: { readonly honoured: boolean; readonly detail: string } | null;
  /** The peer's IP address as the runtime reports it; `undefined` when unknown (treated as non-loopback). */
  remoteAddress(c: Context): string | undefined;
}
