import type { Conditional } from './upstream-get.js';
import type { UpstreamResponse } from './ports.js';

/** Where a cut-off download of one representation stands: bytes `[0, offset)` are stored, `etag` is strong. */
export interface ResumePoint {
  readonly offset: number;
  readonly etag: string;
}

/** What a resumable ingest stored: the same shape as the core's own ingest. */
export interface Ingested {
  readonly dataKey: string;
  readonly sha256: string;
  readonly size: number;
  readonly validators: Conditional;
}

export interface ResumableJob {
  readonly name: string;
  /** The URL as recorded (credentials redacted): a saved download is continued only from the same one. */
  readonly url: string;
  /** Upstream's answer to the job's GET: a 200, or a 206 when it asked to continue `saved()`. */
  readonly response: UpstreamResponse;
  /** A key for a new data object. */
  newDataKey(): string;
  /**
   * Upstream again, for the same URL: `Range: bytes=<offset>-` with `If-Range: <etag>` (a 206 for that same
   * representation, else a 200 with the whole current one), or a plain GET for null.
   */
  again(from: ResumePoint | null): Promise<UpstreamResponse>;
  /** One response's body, counted against its Content-Length and the fetch deadline, failing as the core's own ingest. */
  read(response: UpstreamResponse): AsyncIterable<Uint8Array>;
}

/**
 * A download that survives being cut off (Workers: runtime/workers/resumable-ingest.ts), injected because where its
 * progress lives is the store driver's business (an R2 multipart upload). Principle 2 holds inside it: it continues
 * only the representation with the same strong ETag (If-Range), and anything else starts over from byte 0.
 */
export interface ResumableIngest {
  /** The saved download of `name` from `url` the job's first GET should continue, or null. */
  saved(name: string, url: string): Promise<ResumePoint | null>;
  ingest(job: ResumableJob): Promise<Ingested>;
}
