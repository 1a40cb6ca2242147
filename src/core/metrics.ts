import { describe } from './errors.js';
import type { JobOutcome } from './fetch-job.js';
import type { Logger } from './ports.js';
import type { ErrorInfo } from './records.js';

/**
 * The fetcher's metrics, every name prefixed `pxecache_`: one table of definitions, one interface. This module's
 * `createMetrics` encodes them in the Prometheus text format (0.0.4) with Web APIs only (Workers); Node backs the same
 * interface with prom-client (runtime/node/metrics.ts). Labels carry outcomes, error codes and site names only, never
 * file names or URLs: bounded cardinality, and nothing an unauthenticated scrape should not see.
 */
export const METRICS = {
  pxecache_fetches_total: {
    type: 'counter',
    labels: ['result'],
    help: 'Fetch jobs by result: published (a new version), unchanged (same bytes), not_modified (upstream answered 304), superseded (a newer job had published), held (new bytes recorded, not published: the name is pinned by a rollback), failed.',
  },
  pxecache_fetch_errors_total: {
    type: 'counter',
    labels: ['code'],
    help: 'Failed fetch jobs by error code (the status error code).',
  },
  pxecache_upstream_bytes_total: {
    type: 'counter',
    labels: [],
    help: 'Body bytes read from upstream by fetch jobs, complete or not.',
  },
  pxecache_upstream_respins_total: {
    type: 'counter',
    labels: [],
    help: 'Downloads discarded because upstream changed while they ran (validators checked again after the download).',
  },
  pxecache_upstream_not_modified_total: {
    type: 'counter',
    labels: [],
    help: 'Revalidations of a published name that upstream answered 304 Not Modified (nothing downloaded).',
  },
  pxecache_fetch_coalesced_total: {
    type: 'counter',
    labels: ['via'],
    help: 'Fetch callers that joined a job (or revalidation) already running instead of asking upstream themselves: via="process" (same process) or "lease" (another instance holds the job).',
  },
  pxecache_publish_duration_seconds: {
    type: 'histogram',
    labels: [],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    help: 'From the start of a fetch job to the write of the pointer that published its version.',
  },
  pxecache_site_sync_lag_seconds: {
    type: 'gauge',
    labels: ['site'],
    help: "Now minus the last successful sync of the site's agent, from its latest report (no sample: no report).",
  },
} as const satisfies Record<string, MetricDef>;

export interface MetricDef {
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly labels: readonly string[];
  readonly help: string;
  readonly buckets?: readonly number[];
}

type Named<T extends MetricDef['type']> = {
  [K in keyof typeof METRICS]: (typeof METRICS)[K]['type'] extends T ? K : never;
}[keyof typeof METRICS];
export type CounterName = Named<'counter'>;
export type HistogramName = Named<'histogram'>;
export type GaugeName = Named<'gauge'>;
export type Labels = Readonly<Record<string, string>>;

export interface Metrics {
  inc(name: CounterName, labels?: Labels, by?: number): void;
  observe(name: HistogramName, value: number): void;
  /** Replaces every series of a gauge (values computed at scrape time: a series left out disappears). */
  setGauge(name: GaugeName, series: readonly (readonly [Labels, number])[]): void;
  /** A counter's current value (0 when never counted); for tests and status pages. */
  value(name: CounterName, labels?: Labels): number;
  /** Every series, in the text exposition format. */
  render(): Promise<string>;
}

/** The text encoder: no dependency, so the same series come out of a Worker. */
export function createMetrics(): Metrics {
  const values = new Map<string, Map<string, number>>();
  const hist = new Map<HistogramName, { counts: number[]; sum: number; count: number }>();
  const series = (name: string) => {
    let m = values.get(name);
    if (!m) values.set(name, (m = new Map()));
    return m;
  };
  return {
    inc(name, labels = {}, by = 1) {
      const m = series(name);
      const key = labelText(labels);
      m.set(key, (m.get(key) ?? 0) + by);
    },
    observe(name, value) {
      const { buckets } = METRICS[name];
      let h = hist.get(name);
      if (!h) hist.set(name, (h = { counts: buckets.map(() => 0), sum: 0, count: 0 }));
      h.count++;
      h.sum += value;
      buckets.forEach((le, i) => void (value <= le && h.counts[i]!++));
    },
    setGauge(name, list) {
      values.set(name, new Map(list.map(([labels, v]) => [labelText(labels), v])));
    },
    value: (name, labels = {}) => values.get(name)?.get(labelText(labels)) ?? 0,
    render() {
      const lines: string[] = [];
      for (const [name, def] of Object.entries(METRICS) as [keyof typeof METRICS, MetricDef][]) {
        lines.push(`# HELP ${name} ${def.help}`, `# TYPE ${name} ${def.type}`);
        if (def.type === 'histogram') {
          const h = hist.get(name as HistogramName) ?? { counts: def.buckets!.map(() => 0), sum: 0, count: 0 };
          def.buckets!.forEach((le, i) => lines.push(`${name}_bucket{le="${le}"} ${h.counts[i]}`));
          lines.push(`${name}_bucket{le="+Inf"} ${h.count}`, `${name}_sum ${h.sum}`, `${name}_count ${h.count}`);
          continue;
        }
        const m = values.get(name);
        // A counter without labels is listed at 0 from the start, as prom-client lists it.
        if ((!m || m.size === 0) && def.type === 'counter' && def.labels.length === 0) lines.push(`${name} 0`);
        else for (const [labels, v] of m ?? []) lines.push(`${name}${labels} ${v}`);
      }
      return Promise.resolve(`${lines.join('\n')}\n`);
    },
  };
}

function labelText(labels: Labels): string {
  const entries = Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (entries.length === 0) return '';
  return `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/** What one fetch job adds to the counters: its result, and its error code when it failed. */
export function countOutcome(metrics: Metrics, outcome: JobOutcome | null, error: ErrorInfo | null): void {
  if (error) {
    metrics.inc('pxecache_fetches_total', { result: 'failed' });
    metrics.inc('pxecache_fetch_errors_total', { code: error.code });
  } else if (outcome) {
    metrics.inc('pxecache_fetches_total', { result: resultLabel(outcome) });
    if (outcome.kind === 'not-modified') metrics.inc('pxecache_upstream_not_modified_total');
  }
}

/** A lease-free revalidation that upstream answered 304 (core/fetcher.ts `revalidate`). */
export function countNotModified(metrics: Metrics | undefined): void {
  metrics?.inc('pxecache_fetches_total', { result: 'not_modified' });
  metrics?.inc('pxecache_upstream_not_modified_total');
}

function resultLabel(outcome: JobOutcome): string {
  if (outcome.kind === 'not-modified') return 'not_modified';
  if (outcome.kind === 'unchanged') return 'unchanged';
  const kind = outcome.result.kind;
  return kind === 'already-current' ? 'unchanged' : kind;
}

/** Seconds since each site's agent last synced, from its latest report; null: never synced, or no report. */
export function siteLagOf(
  reports: readonly { readonly site: string; readonly lastSyncAt: string | null }[],
  now: number,
): Record<string, number | null> {
  return Object.fromEntries(
    reports.map((r) => [r.site, r.lastSyncAt === null ? null : Math.max(0, (now - Date.parse(r.lastSyncAt)) / 1000)]),
  );
}

/**
 * The scrape: the per-site lag gauge computed now (AppDeps.siteLag), then every series. A failure to read the lag
 * (store down) drops that gauge from this scrape, not the scrape: the counters matter most when the store fails.
 */
export async function scrape(
  metrics: Metrics,
  siteLag: (() => Promise<Record<string, number | null>>) | undefined,
  logger: Logger,
): Promise<string> {
  if (siteLag) {
    const lags = await siteLag().catch((err: unknown) => {
      logger.warn('metrics: site sync lag not read', { error: describe(err) });
      return {};
    });
    const series = Object.entries(lags).flatMap(([site, lag]) => (lag === null ? [] : [[{ site }, lag] as const]));
    metrics.setGauge('pxecache_site_sync_lag_seconds', series);
  }
  return metrics.render();
}
