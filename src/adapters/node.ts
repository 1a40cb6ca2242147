import type { ServeConfig } from '../core/config.js';
import type { Logger } from '../core/ports.js';
import { parseSites } from '../core/sites.js';
import { createApp } from '../http/app.js';
import { createNodeAppDeps } from '../runtime/node/app-deps.js';
import { loadNodeAuth } from '../runtime/node/auth.js';
import { startStoreGc } from '../runtime/node/store-gc-timer.js';
import { inProcessAgentMetrics, startInProcessAgent } from '../runtime/node/in-process-agent.js';
import { listen } from '../runtime/node/listen.js';
import { loadHttps } from '../runtime/node/tls.js';
import { VERSION } from '../runtime/node/version.js';
import { openWriterStore } from '../runtime/node/writer-store.js';

/**
 * `pxecache serve`: the Hono app on @hono/node-server over HTTP (`--port`) and/or HTTPS with client certificates
 * (`--https-port`), plus an in-process agent when a TFTP root is given.
 */
export async function startNodeServer(config: ServeConfig, logger: Logger) {
  const sites = parseSites(config.sites, config['server-name']);
  // Options and files first: a refused start creates nothing.
  const https = await loadHttps(config, logger);
  const auth = await loadNodeAuth(config, logger);
  const { store, description, createOnly } = await openWriterStore(config, logger);
  const { deps, close: closeDeps } = createNodeAppDeps({
    store,
    settings: config,
    logger,
    sites,
    auth: auth.settings,
    createOnly,
    httpEnabled: config.http,
    httpsEnabled: https !== null,
    maintainCatalog: true,
  });
  const httpPort = config.http ? config.port : null;
  const metrics = inProcessAgentMetrics(config, deps.metrics);
  const app = createApp({ ...deps, ...(metrics.server ? { metrics: metrics.server } : {}) });
  const listeners = await listen(app.fetch, { host: config.host, httpPort, https, logger });
  const { url, httpsUrl } = listeners;
  const tls = httpsUrl ? { httpsUrl, certificate: https?.certificate } : {};
  const siteNames = sites.map((s) => s.name);
  logger.info('pxecache serving', { url, ...tls, store: description, version: VERSION, sites: siteNames });
  const stopWatching = auth.watch();
  const fetcher = deps.fetcher;
  const agent = await startInProcessAgent({ config, store, description, fetcher, logger, metrics: metrics.agent });
  const gc = startStoreGc({ store, intervalSeconds: config['gc-interval'], graceSeconds: config['gc-grace'], logger });
  return {
    url,
    httpsUrl,
    /** SIGHUP: re-read --tokens-file. */
    reload: () => auth.reload('SIGHUP'),
    async close() {
      stopWatching();
      const agentStopped = agent.stop();
      await listeners.close();
      await Promise.all([agentStopped, gc.stop()]);
      await closeDeps();
    },
  };
}
