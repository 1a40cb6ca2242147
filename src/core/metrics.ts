import type { JobOutcome } from './fetch-job.js';
import type { ErrorInfo } from './records.js';

/**
 * Counters in the Prometheus text format (0.0.4), every name prefixed `pxecache_`. Runtime-agnostic (a Worker can
 * serve the same text). Labels carry outcomes and error codes only, never file names or URLs: bounded cardinality,
 * and nothing an unauthenticated scrape should not see.
 */

const COUNTERS = {
  pxecache_fetches_total:
    'Fetch jobs by result: published (a new version), unchanged (same bytes), not_modified (upstream answered 304), superseded (a newer job had published), held (new bytes recorded, not published: the name is pinned by a rollback), failed.',
  pxecache_fetch_errors_total: 'Failed fetch jobs by error code (the status error code).',
  pxecache_upstream_bytes_total: 'Body bytes read from upstream by fetch jobs, complete or not.',
  pxecache_upstream_respins_total:
    'Downloads discarded because upstream changed while they ran (validators checked again after the download).',
} as const;

export type CounterName = keyof typeof COUNTERS;
export type Labels = Readonly<Record<string, string>>;

export interface Metrics {
  inc(name: CounterName, labels?: Labels, by?: number): void;
  /** The current value (0 when never counted); for tests and status pages. */
  value(name: CounterName, labels?: Labels): number;
  /** Every counter, in the text exposition format. */
  render(): string;
}

export function createMetrics(): Metrics {
  const values = new Map<CounterName, Map<string, number>>();
  const series = (name: CounterName) => {
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
    value: (name, labels = {}) => values.get(name)?.get(labelText(labels)) ?? 0,
    render() {
      const lines: string[] = [];
      for (const [name, help] of Object.entries(COUNTERS) as [CounterName, string][]) {
        lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
        const m = values.get(name);
        // A counter never counted is still listed at 0 (unlabelled), so a scrape shows every series from the start.
        if (!m || m.size === 0) lines.push(`${name} 0`);
        else for (const [labels, v] of m) lines.push(`${name}${labels} ${v}`);
      }
      return `${lines.join('\n')}\n`;
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
  }
}

function resultLabel(outcome: JobOutcome): string {
  if (outcome.kind === 'not-modified') return 'not_modified';
  if (outcome.kind === 'unchanged') return 'unchanged';
  const kind = outcome.result.kind;
  return kind === 'already-current' ? 'unchanged' : kind;
}
