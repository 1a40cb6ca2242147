import type { Context } from 'hono';
import type { AuthSettings } from '../core/auth.js';
import type { FailureLimiter } from '../core/auth-failures.js';
import type { BootConfigs } from '../core/boot-configs.js';
import type { Fetcher } from '../core/fetcher.js';
import type { Metrics } from '../core/metrics.js';
import type { Clock, HasherFactory, Logger } from '../core/ports.js';
import type { Site } from '../core/sites.js';
import type { ObjectStore } from '../storage/object-store.js';

export interface AppDeps {
  readonly fetcher: Fetcher;
  /** This process's counters, served at GET /metrics (an empty set when absent). */
  readonly metrics?: Metrics;
  /**
   * Seconds since each site's agent last synced, read at scrape time for `pxecache_site_sync_lag_seconds{site}`
   * (null: no report or never synced, so no sample). Absent: read from the site reports in the store.
   */
  readonly siteLag?: () => Promise<Record<string, number | null>>;
  readonly store: ObjectStore;
  readonly hasher: HasherFactory;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly version: string;
  readonly configs: BootConfigs;
  /** The virtual smart proxies; the first is the default site (the unprefixed routes). */
  readonly sites: readonly Site[];
  /** Which listeners run, for /v2/features (smart-proxy's http_enabled, https_enabled). */
  readonly httpEnabled: boolean;
  readonly httpsEnabled: boolean;
  /** Versions kept per name (`--keep-versions`), for `POST /api/v1/unpin`; absent: unpin drops none. */
  readonly keepVersions?: number;
  /** Catalog long-poll: how often to look for publications made by other processes. */
  readonly catalogPollMs: number;
  /**
   * Failed bearer-token attempts by address, when they must outlive this app (Workers build one app per request);
   * absent: the app keeps its own.
   */
  readonly authFailures?: FailureLimiter;
  /** Bearer tokens for the native API, trusted client certificates, the smart-proxy loopback rule (http/auth.ts). */
  readonly auth: AuthSettings;
  /**
   * What the store's create-only probe found (s3:// stores), shown on /healthz; null when no probe ran (file and
   * memory stores guarantee create-only themselves).
   */
  readonly createOnly?: { readonly honoured: boolean; readonly detail: string } | null;
  /**
   * Keeps work started by a request running after its response: Workers end an invocation's I/O with its response
   * unless told (`waitUntil`); a Node process runs it anyway (absent).
   */
  background?(c: Context, work: Promise<unknown>): void;
  /**
   * A response body whose length is known, so that the runtime sends Content-Length (Workers only do for a
   * FixedLengthStream; Node's adapter takes the header as given). Absent: the stream as it is.
   */
  sizedBody?(body: ReadableStream<Uint8Array>, length: number): ReadableStream<Uint8Array>;
  /**
   * Where a blob's bytes can be fetched directly (Lambda: a presigned S3 URL, since its responses are capped at
   * 6 MB buffered / 200 MB streamed): the blob route answers 302 to it. Absent: the route streams the bytes.
   */
  blobRedirect?(key: string): Promise<string>;
  /** The peer's IP address as the runtime reports it; `undefined` when unknown (treated as non-loopback). */
  remoteAddress(c: Context): string | undefined;
  /**
   * The client certificate the runtime verified against the configured CA (Node's HTTPS listener, or a platform
   * terminating mutual TLS); null for a request that came without one (plain HTTP).
   */
  clientCertificate(c: Context): ClientCertificate | null;
}

export interface ClientCertificate {
  /** The subject's common name as written in the certificate; null when it has none, or several. */
  readonly cn: string | null;
}
