import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { ServeConfig } from '../core/config.js';
import type { Logger } from '../core/ports.js';
import { parseSites } from '../core/sites.js';
import { createApp } from '../http/app.js';
import { createStoreSource } from '../agent/store-source.js';
import { createAgent } from '../agent/sync.js';
import { createNodeAppDeps } from '../runtime/node/app-deps.js';
import { loadNodeAuth } from '../runtime/node/auth.js';
import { nodeSha256 } from '../runtime/node/hasher.js';
import { VERSION } from '../runtime/node/version.js';
import { openWriterStore } from '../runtime/node/writer-store.js';

/** `pxecache serve`: the Hono app on @hono/node-server, plus an in-process agent when a TFTP root is given. */
export async function startNodeServer(config: ServeConfig, logger: Logger) {
  const sites = parseSites(config.sites, config['server-name']);
  const auth = await loadNodeAuth(config, logger); // before the store: a refused start creates nothing
  const { store, description, createOnly } = await openWriterStore(config, logger);
  const { deps, close: closeDeps } = createNodeAppDeps({ store, settings: config, logger, sites, auth, createOnly });
  const server = serve({ fetch: createApp(deps).fetch, port: config.port, hostname: config.host });
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info('pxecache serving', { url, store: description, version: VERSION, sites: sites.map((s) => s.name) });

  const stop = new AbortController();
  let agentDone: Promise<void> = Promise.resolve();
  const root = config['tftp-root'];
  if (root) {
    const wake = (s: AbortSignal) => deps.fetcher.nextPublish(s);
    const source = createStoreSource({ store, description, pollMs: 500, wake });
    const stateDir = config['state-dir'] ?? `${root.replace(/\/+$/, '')}.state`;
    const agent = createAgent({ source, root, stateDir, site: 'default', hasher: nodeSha256, logger });
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
      await closeDeps();
    },
  };
}
