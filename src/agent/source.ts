import { PxeError } from '../core/errors.js';
import type { CatalogEntry, Changes, FileState } from '../core/records.js';
import type { SiteReport } from '../core/site-reports.js';

/** A name's state at the source, and the version it has published (null: none yet). */
export interface SourceFileState {
  readonly state: FileState;
  readonly version: string | null;
}

/** What reading a blob needs: CatalogEntry (boot files) and ConfigEntry (boot configs) both fit. */
export type BlobRef = Pick<CatalogEntry, 'sha256' | 'key' | 'size'>;

/** Where an agent reads the change feed and version bytes from: a fetcher over HTTP, or the store directly. */
export interface CatalogSource {
  readonly description: string;
  /**
   * The boot files and `site`'s boot configs (none when `site` is null) that changed after `since`, or everything
   * (`complete: true`) when `since` is null or the source cannot answer a delta from it; 'not-modified' when nothing
   * changed. `waitSeconds` asks the source to hold the request until something changes (long-poll). Throws
   * UnknownSiteError when the source knows the site does not exist.
   */
  changes(
    site: string | null,
    since: string | null,
    waitSeconds?: number,
    signal?: AbortSignal,
  ): Promise<Changes | 'not-modified'>;
  /** The bytes of one blob from `offset` on (Range-resumable: blobs are immutable). */
  openBlob(blob: BlobRef, offset: number, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>>;
  /**
   * The state of one name at the source (`fetching` while a re-fetch runs) and its published version, null for a name
   * it does not know. Asked only for the members of a respin set with changes to swap (agent/set-hold.ts).
   */
  fileState(name: string, signal?: AbortSignal): Promise<SourceFileState | null>;
  /** Stores what the agent's site holds (docs/sites.md), replacing the site's previous report. */
  report(report: SiteReport, signal?: AbortSignal): Promise<void>;
}

/** The fetcher has no such site (not in its --sites): its configs cannot be read, boot files still can. */
export class UnknownSiteError extends PxeError {
  constructor(message: string) {
    super('unknown-site', message);
  }
}
