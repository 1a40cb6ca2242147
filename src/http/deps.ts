import type { Fetcher } from '../core/fetcher.js';
import type { Clock, HasherFactory, Logger } from '../core/ports.js';
import type { ObjectStore } from '../storage/object-store.js';

export interface AppDeps {
  readonly fetcher: Fetcher;
  readonly store: ObjectStore;
  readonly hasher: HasherFactory;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly version: string;
  /** smart-proxy's `tftp_servername`: what Foreman puts in DHCP next-server; empty when unset. */
  readonly serverName: string;
  readonly httpsEnabled: boolean;
  /** Catalog long-poll: how often to look for publications made by other processes. */
  readonly catalogPollMs: number;
}
