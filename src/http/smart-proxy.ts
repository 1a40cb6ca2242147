import { Hono } from 'hono';
import type { AppDeps } from './deps.js';
import { readParams, required } from './params.js';

/**
 * The subset of smart-proxy's TFTP module Foreman calls for boot files (theforeman/smart-proxy modules/tftp/).
 * Foreman's ProxyAPI::TFTP treats any 2xx as success and shows the body of anything else to the user.
 */
export function smartProxyRoutes(deps: AppDeps): Hono {
  const app = new Hono();

  app.get('/features', (c) => c.json(['tftp']));
  app.get('/version', (c) => c.json({ version: deps.version, modules: { tftp: deps.version } }));
  app.get('/v2/features', (c) =>
    c.json({
      tftp: {
        http_enabled: true,
        https_enabled: deps.httpsEnabled,
        settings: { tftp_servername: deps.serverName || null },
        state: 'running',
        capabilities: ['fetch_boot_file'],
      },
    }),
  );
  app.get('/tftp/serverName', (c) => c.json({ serverName: deps.serverName }));

  app.post('/tftp/fetch_boot_file', async (c) => {
    const params = await readParams(c);
    const prefix = required(params, 'prefix');
    const path = required(params, 'path');
    const { accepted } = await deps.fetcher.submit({ prefix, path });
    deps.logger.info('fetch_boot_file accepted', { name: accepted.name, url: path, state: accepted.state });
    // Empty 200 as smart-proxy answers; the download goes on in the background and its result is in the status API.
    return c.body('', 200);
  });

  return app;
}
