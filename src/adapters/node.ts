import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { ServeConfig } from '../core/config.js';
import type { Logger } from '../core/ports.js';
import { systemClock } from '../core/ports.js';
import { createApp } from '../http/app.js';
import { createStoreSource } from '../agent/store-source.js';
import { createAgent } from '../agent/sync.js';
import { nodeSha256 } from '../runtime/node/hasher.js';
import { createNodeFetcher } from '../runtime/node/fetcher-deps.js';
import { VERSION } from '../runtime/node/version.js';
import { openStore } from '../storage/store-url.js';

/** `pxecache serve`: the Hono app on @hono/node-server, plus an in-process agent when a TFTP root is given. */
export async function startNodeServer(config: ServeConfig, logger: Logger) {
  const { store, description } = await openStore(config.store);
  const { fetcher, close: closeUpstream } = createNodeFetcher(store, config, logger);
  const deps = { fetcher, store, hasher: nodeSha256, clock: systemClock, logger, version: VERSION };
  const app = createApp({ ...deps, serverName: config['server-name'], httpsEnabled: false, catalogPollMs: 500 });
  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host });
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info('pxecache serving', { url, store: description, version: VERSION });

  const stop = new AbortController();
  let agentDone: Promise<void> = Promise.resolve();
  const root = config['tftp-root'];
  if (root) {
    const source = createStoreSource({
      store,
      description,
      hasher: nodeSha256,
      pollMs: 1000,
      wake: (s) => fetcher.nextPublish(s),
    });
    const agent = createAgent({
      source,
      root,
      stateDir: config['state-dir'] ?? `${root.replace(/\/+$/, '')}.state`,
      hasher: nodeSha256,
      logger,
    });
    await agent.start();
    agentDone = agent.run({ intervalMs: config['agent-interval'] * 1000, waitSeconds: 30, signal: stop.signal });
    logger.info('in-process agent started', { root });
  }
  return {
    url,
    async close() {
      stop.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await closed;
      await agentDone;
      await closeUpstream();
    },
  };
}
