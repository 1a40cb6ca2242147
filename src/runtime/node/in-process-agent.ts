import type { ServeConfig } from '../../core/config.js';
import type { Fetcher } from '../../core/fetcher.js';
import { createMetrics, type Metrics } from '../../core/metrics.js';
import type { Logger } from '../../core/ports.js';
import { createStoreSource } from '../../agent/store-source.js';
import { createAgent } from '../../agent/sync.js';
import { createSetSwapMetrics, type SetSwapMetrics } from '../../agent/set-swap-metrics.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { nodeSha256 } from './hasher.js';

/**
 * `serve --tftp-root`: an agent in the server's process, reading the store directly (no token needed) and woken by
 * each publication. Resolves once it runs; `stop` ends it.
 */
export async function startInProcessAgent(opts: {
  config: ServeConfig;
  store: ObjectStore;
  description: string;
  fetcher: Fetcher;
  logger: Logger;
  /** Also served on the server's /metrics. */
  metrics: SetSwapMetrics;
}): Promise<{ stop(): Promise<void> }> {
  const { config, logger } = opts;
  const root = config['tftp-root'];
  if (!root) return { stop: async () => {} };
  const stop = new AbortController();
  const wake = (s: AbortSignal) => opts.fetcher.nextPublish(s);
  // The fetcher's status: it also knows the set members it is revalidating before their records are written.
  const status = (name: string) => opts.fetcher.status(name);
  const source = createStoreSource({ store: opts.store, description: opts.description, pollMs: 500, wake, status });
  const stateDir = config['state-dir'] ?? `${root.replace(/\/+$/, '')}.state`;
  const agent = createAgent({
    source,
    root,
    stateDir,
    site: 'default',
    hasher: nodeSha256,
    logger,
    setHoldMs: config['set-hold'] * 1000,
    metrics: opts.metrics,
  });
  await agent.start();
  const done = agent.run({ intervalMs: config['agent-interval'] * 1000, waitSeconds: 30, signal: stop.signal });
  logger.info('in-process agent started', { root });
  return {
    async stop() {
      stop.abort();
      await done;
    },
  };
}

/**
 * The agent's set-swap series for `serve --tftp-root`, and the server's metrics with them appended to /metrics (an
 * extra text source: the fetcher's counters in core/metrics.ts stay as they are). Without a TFTP root, no agent
 * series.
 */
export function inProcessAgentMetrics(
  config: ServeConfig,
  server: Metrics | undefined,
): { agent: SetSwapMetrics; server: Metrics | undefined } {
  const agent = createSetSwapMetrics();
  if (!config['tftp-root']) return { agent, server };
  const base = server ?? createMetrics();
  return { agent, server: { ...base, render: async () => (await base.render()) + agent.render() } };
}
