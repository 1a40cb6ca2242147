import type { Catalog, CatalogEntry } from '../core/records.js';

/** Where an agent reads the catalog and version bytes from: a fetcher over HTTP, or the store directly. */
export interface CatalogSource {
  readonly description: string;
  /**
   * The catalog, or 'not-modified' when `etag` still matches. `waitSeconds` asks the source to hold the request until
   * something changes (long-poll); sources that cannot long-poll return at once.
   */
  catalog(etag: string | null, waitSeconds?: number, signal?: AbortSignal): Promise<Catalog | 'not-modified'>;
  /** The bytes of one version from `offset` on (Range-resumable: versions are immutable). */
  openBlob(entry: CatalogEntry, offset: number, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>>;
}
