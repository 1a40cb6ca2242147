import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { METRICS, type Labels, type Metrics } from '../../core/metrics.js';

/**
 * The core's metrics (core/metrics.ts) backed by prom-client. Each call makes its own registry, so that two apps in
 * one process (tests) never count into each other; the process metrics (CPU, memory, event-loop lag, GC) describe the
 * process, not an app, and are collected once per process into a registry of their own, appended to every scrape.
 */
export function createNodeMetrics(): Metrics {
  const registry = new Registry();
  const counters = new Map<string, Counter>();
  const gauges = new Map<string, Gauge>();
  const histograms = new Map<string, Histogram>();
  for (const [name, def] of Object.entries(METRICS)) {
    const common = { name, help: def.help, labelNames: def.labels, registers: [registry] };
    if (def.type === 'counter') counters.set(name, new Counter(common));
    else if (def.type === 'gauge') gauges.set(name, new Gauge(common));
    else histograms.set(name, new Histogram({ ...common, buckets: [...def.buckets] }));
  }
  // prom-client reads its values asynchronously; `value` is synchronous (status pages, tests), so counts are kept too.
  const counts = new Map<string, number>();
  const key = (name: string, labels: Labels) => `${name}${JSON.stringify(Object.entries(labels).sort())}`;
  return {
    inc(name, labels = {}, by = 1) {
      counters.get(name)!.inc(labels, by);
      counts.set(key(name, labels), (counts.get(key(name, labels)) ?? 0) + by);
    },
    observe: (name, value) => histograms.get(name)!.observe(value),
    setGauge(name, series) {
      const gauge = gauges.get(name)!;
      gauge.reset();
      for (const [labels, value] of series) gauge.set(labels, value);
    },
    value: (name, labels = {}) => counts.get(key(name, labels)) ?? 0,
    render: async () => (await registry.metrics()) + (await processRegistry().metrics()),
  };
}

let processMetrics: Registry | undefined;

/** Collected from the first scrape on: collectDefaultMetrics starts observers that live as long as the process. */
function processRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics, prefix: 'pxecache_' });
  }
  return processMetrics;
}
