import type { ServeConfig } from '../../core/config.js';
import type { Fetcher } from '../../core/fetcher.js';
import type { Logger } from '../../core/ports.js';
import { createStoreSource } from '../../agent/store-source.js';
import { createAgent } from '../../agent/sync.js';
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
}): Promise<{ stop(): Promise<void> }> {
  const { config, logger } = opts;
  const root = config['tftp-root'];
  if (!root) return { stop: async () => {} };
  const stop = new AbortController();
  const wake = (s: AbortSignal) => opts.fetcher.nextPublish(s);
  const source = createStoreSource({ store: opts.store, description: opts.description, pollMs: 500, wake });
  const stateDir = config['state-dir'] ?? `${root.replace(/\/+$/, '')}.state`;
  const agent = createAgent({ source, root, stateDir, site: 'default', hasher: nodeSha256, logger });
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
