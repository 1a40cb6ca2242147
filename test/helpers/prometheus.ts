/** /metrics read with a Prometheus text-format parser (parse-prometheus-text-format), not with the test's own regex. */
import parsePrometheusTextFormat, { type Family } from 'parse-prometheus-text-format';

export interface Scrape {
  readonly families: readonly Family[];
  /** A counter's or gauge's value for exactly these labels; 0 when the series is absent. */
  value(name: string, labels?: Record<string, string>): number;
  /** Whether a series with exactly these labels is present. */
  has(name: string, labels?: Record<string, string>): boolean;
  /** A histogram's observation count. */
  count(name: string): number;
}

export function parseMetrics(text: string): Scrape {
  const families = parsePrometheusTextFormat(text);
  const sample = (name: string, labels: Record<string, string> = {}) =>
    families
      .find((f) => f.name === name)
      ?.metrics.find((m) => JSON.stringify(sorted(m.labels ?? {})) === JSON.stringify(sorted(labels)));
  return {
    families,
    value: (name, labels) => Number(sample(name, labels)?.value ?? 0),
    has: (name, labels) => sample(name, labels) !== undefined,
    count: (name) => Number(families.find((f) => f.name === name)?.metrics[0]?.count ?? 0),
  };
}

const sorted = (labels: Record<string, string>) => Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1));
