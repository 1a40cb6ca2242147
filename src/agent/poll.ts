/**
 * One poll of both catalogs an agent follows: the boot files (`GET /api/v1/files`) and its site's boot configs
 * (`GET /api/v1/sites/<site>/configs`). They are long-polled together: Foreman writes a host's configs before it asks
 * for boot files, often without changing the files catalog at all, so a config must not wait behind a files long-poll.
 */
import type { Catalog, ConfigCatalog } from '../core/records.js';
import type { CatalogSource } from './source.js';

export type Settled<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

export interface Polled {
  readonly files: Catalog | 'not-modified';
  /** A configs failure (fetcher without the route, unknown site) must not stop boot files: it is reported instead. */
  readonly configs: Settled<ConfigCatalog | 'not-modified'>;
}

const settle = <T>(p: Promise<T>): Promise<Settled<T>> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );

const hasNews = (r: Settled<unknown>) => !r.ok || r.value !== 'not-modified';

/** Throws when the files catalog cannot be read (as before configs existed); configs errors are returned. */
export async function pollCatalogs(opts: {
  source: CatalogSource;
  site: string;
  filesEtag: string | null;
  configsEtag: string | null;
  waitSeconds: number | undefined;
  signal: AbortSignal | undefined;
}): Promise<Polled> {
  const { source, site, waitSeconds, signal } = opts;
  const readFiles = (wait: number | undefined, s: AbortSignal | undefined) =>
    settle(source.catalog(opts.filesEtag, wait, s));
  const readConfigs = (wait: number | undefined, s: AbortSignal | undefined) =>
    settle(source.configs(site, opts.configsEtag, wait, s));

  let files: Settled<Catalog | 'not-modified'>;
  let configs: Settled<ConfigCatalog | 'not-modified'>;
  if (!waitSeconds) {
    [files, configs] = await Promise.all([readFiles(waitSeconds, signal), readConfigs(waitSeconds, signal)]);
  } else {
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const f = readFiles(waitSeconds, stop.signal);
      const c = readConfigs(waitSeconds, stop.signal);
      // The first answer with news (a change or an error) ends the other's wait; a timed-out one waits for the other.
      if (await Promise.race([f.then(hasNews), c.then(hasNews)])) stop.abort();
      [files, configs] = await Promise.all([f, c]);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    signal?.throwIfAborted();
    // The one cut short failed with an abort (http) or answered fresh (store): re-read a failure once, not waiting.
    if (stop.signal.aborted && !files.ok) files = await readFiles(0, signal);
    if (stop.signal.aborted && !configs.ok) configs = await readConfigs(0, signal);
  }
  signal?.throwIfAborted();
  if (!files.ok) throw files.error;
  return { files: files.value, configs };
}
