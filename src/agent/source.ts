import type { Catalog, CatalogEntry, ConfigCatalog } from '../core/records.js';

/** What reading a blob needs: CatalogEntry (boot files) and ConfigEntry (boot configs) both fit. */
export type BlobRef = Pick<CatalogEntry, 'sha256' | 'key' | 'size'>;

/** Where an agent reads the catalogs and version bytes from: a fetcher over HTTP, or the store directly. */
export interface CatalogSource {
  readonly description: string;
  /**
   * The catalog, or 'not-modified' when `etag` still matches. `waitSeconds` asks the source to hold the request until
   * something changes (long-poll); sources that cannot long-poll return at once.
   */
  catalog(etag: string | null, waitSeconds?: number, signal?: AbortSignal): Promise<Catalog | 'not-modified'>;
  /**
   * The boot configs Foreman wrote for `site` through the pxeconfig routes (tombstones included), with the same
   * ETag and long-poll semantics as `catalog`.
   */
  configs(
    site: string,
    etag: string | null,
    waitSeconds?: number,
    signal?: AbortSignal,
  ): Promise<ConfigCatalog | 'not-modified'>;
  /** The bytes of one blob from `offset` on (Range-resumable: blobs are immutable). */
  openBlob(blob: BlobRef, offset: number, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>>;
}
