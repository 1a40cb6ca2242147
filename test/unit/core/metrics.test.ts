/**
 * Both implementations of the metrics port, the text encoder Workers serve (core/metrics.ts) and prom-client on Node
 * (runtime/node/metrics.ts), read back with a Prometheus text-format parser: same series, same values. The per-site
 * lag gauge is computed at scrape time from an injected `siteLag` hook (AppDeps.siteLag).
 */
import { describe, expect, it } from 'vitest';
import { createMetrics, METRICS, scrape, siteLagOf, type Metrics } from '../../../src/core/metrics.js';
import { silentLogger, type Logger } from '../../../src/core/ports.js';
import { createNodeMetrics } from '../../../src/runtime/node/metrics.js';
import { parseMetrics } from '../../helpers/prometheus.js';

describe.each([
  ['text encoder (Workers)', createMetrics],
  ['prom-client (Node)', createNodeMetrics],
] as const)('metrics: %s', (_, create: () => Metrics) => {
  it('renders every series, parsed by a Prometheus text-format parser', async () => {
    const m = create();
    m.inc('pxecache_fetches_total', { result: 'published' });
    m.inc('pxecache_fetches_total', { result: 'published' });
    m.inc('pxecache_fetch_errors_total', { code: 'upstream-status' });
    m.inc('pxecache_upstream_bytes_total', {}, 1234);
    m.inc('pxecache_fetch_coalesced_total', { via: 'process' });
    m.observe('pxecache_publish_duration_seconds', 0.2);
    m.observe('pxecache_publish_duration_seconds', 7);
    m.setGauge('pxecache_site_sync_lag_seconds', [[{ site: 'east "1"' }, 12.5]]);
    const s = parseMetrics(await m.render());
    for (const name of Object.keys(METRICS)) expect(s.families.map((f) => f.name)).toContain(name);
    expect(s.value('pxecache_fetches_total', { result: 'published' })).toBe(2);
    expect(s.value('pxecache_fetch_errors_total', { code: 'upstream-status' })).toBe(1);
    expect(s.value('pxecache_upstream_bytes_total')).toBe(1234);
    expect(s.value('pxecache_upstream_not_modified_total')).toBe(0);
    expect(s.has('pxecache_upstream_not_modified_total')).toBe(true);
    expect(s.value('pxecache_fetch_coalesced_total', { via: 'process' })).toBe(1);
    expect(s.count('pxecache_publish_duration_seconds')).toBe(2);
    const hist = s.families.find((f) => f.name === 'pxecache_publish_duration_seconds')!;
    expect(hist.type).toBe('HISTOGRAM');
    expect(Number(hist.metrics[0]!.buckets!['0.25'])).toBe(1);
    expect(Number(hist.metrics[0]!.buckets!['10'])).toBe(2);
    expect(Number(hist.metrics[0]!.sum)).toBeCloseTo(7.2);
    expect(s.value('pxecache_site_sync_lag_seconds', { site: 'east "1"' })).toBe(12.5);
    expect(m.value('pxecache_fetches_total', { result: 'published' })).toBe(2);
    expect(s.families.every((f) => f.name.startsWith('pxecache_'))).toBe(true);
  });

  it('computes the site lag at scrape time from the siteLag hook; a site never synced has no sample', async () => {
    const m = create();
    let now = Date.parse('2026-01-01T00:10:00Z');
    const reports = [
      { site: 'east', lastSyncAt: '2026-01-01T00:09:30Z' },
      { site: 'west', lastSyncAt: null },
    ];
    const siteLag = () => Promise.resolve(siteLagOf(reports, now));
    let s = parseMetrics(await scrape(m, siteLag, silentLogger));
    expect(s.value('pxecache_site_sync_lag_seconds', { site: 'east' })).toBe(30);
    expect(s.has('pxecache_site_sync_lag_seconds', { site: 'west' })).toBe(false);
    now += 60_000;
    reports[1] = { site: 'west', lastSyncAt: '2026-01-01T00:10:50Z' };
    s = parseMetrics(await scrape(m, siteLag, silentLogger));
    expect(s.value('pxecache_site_sync_lag_seconds', { site: 'east' })).toBe(90);
    expect(s.value('pxecache_site_sync_lag_seconds', { site: 'west' })).toBe(10);
  });

  it('still answers the scrape when the lag cannot be read, and says why', async () => {
    const m = create();
    m.inc('pxecache_fetches_total', { result: 'failed' });
    const warnings: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (msg) => void warnings.push(msg) };
    const s = parseMetrics(await scrape(m, () => Promise.reject(new Error('store down')), logger));
    expect(s.value('pxecache_fetches_total', { result: 'failed' })).toBe(1);
    expect(warnings).toEqual(['metrics: site sync lag not read']);
  });
});

describe('prom-client (Node)', () => {
  it("adds the process's default metrics under pxecache_, and keeps each app's counters apart", async () => {
    const one = createNodeMetrics();
    const two = createNodeMetrics();
    one.inc('pxecache_upstream_bytes_total', {}, 10);
    const s = parseMetrics(await two.render());
    expect(s.value('pxecache_upstream_bytes_total')).toBe(0);
    expect(s.has('pxecache_process_cpu_user_seconds_total')).toBe(true);
    expect(s.families.some((f) => f.name === 'pxecache_nodejs_eventloop_lag_seconds')).toBe(true);
    expect(s.families.every((f) => f.name.startsWith('pxecache_'))).toBe(true);
  });
});
