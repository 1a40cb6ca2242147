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
}
