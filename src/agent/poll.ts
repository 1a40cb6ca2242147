/**
 * One poll of the change feed: the boot files and the agent's site's boot configs in one request (`GET
 * /api/v1/changes`), long-polled. A site the source does not know must not stop boot files: the files are read
 * without it and the site's error is returned for the config report.
 */
import type { Changes } from '../core/records.js';
import { UnknownSiteError, type CatalogSource } from './source.js';

export type Settled<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

export interface Polled {
  readonly changes: Changes | 'not-modified';
  /** Why the site's configs could not be read (then `changes` holds boot files only), or null. */
  readonly siteError: UnknownSiteError | null;
}

export async function pollChanges(opts: {
  source: CatalogSource;
  site: string;
  since: string | null;
  /** Where the files-only request starts when the site is unknown. */
  fallbackSince: string | null;
  waitSeconds: number | undefined;
  signal: AbortSignal | undefined;
}): Promise<Polled> {
  const { source, site, since, waitSeconds, signal } = opts;
  try {
    return { changes: await source.changes(site, since, waitSeconds, signal), siteError: null };
  } catch (err) {
    if (!(err instanceof UnknownSiteError)) throw err;
    // Not waiting: the pass reports the site's error now; the agent retries with backoff.
    return { changes: await source.changes(null, opts.fallbackSince, 0, signal), siteError: err };
  }
}
