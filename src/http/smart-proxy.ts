import { Hono } from 'hono';
import { redactUrl } from '../core/redact.js';
import type { Site } from '../core/sites.js';
import type { AppDeps } from './deps.js';
import { requestIdOf } from './request-id.js';
import { readParams, required } from './params.js';
import { pxeconfigRoutes } from './pxeconfig.js';

/**
 * smart-proxy's TFTP module as Foreman calls it (theforeman/smart-proxy modules/tftp/), for one site. Foreman's
 * ProxyAPI::TFTP treats any 2xx as success and shows the body of anything else to the user. Boot files are shared
 * by every site (content-addressed); boot configs and the server name are the site's own.
 */
export function smartProxyRoutes(deps: AppDeps, site: Site): Hono {
  const app = new Hono();

  app.get('/features', (c) => c.json(['tftp']));
  app.get('/version', (c) => c.json({ version: deps.version, modules: { tftp: deps.version } }));
  app.get('/v2/features', (c) =>
    c.json({
      tftp: {
        http_enabled: deps.httpEnabled,
        https_enabled: deps.httpsEnabled,
        settings: { tftp_servername: site.serverName || null },
        state: 'running',
        capabilities: [],
      },
    }),
  );
  app.get('/tftp/serverName', (c) => c.json({ serverName: site.serverName }));

  app.post('/tftp/fetch_boot_file', async (c) => {
    const params = await readParams(c);
    const prefix = required(params, 'prefix');
    const path = required(params, 'path');
    const requestId = requestIdOf(c);
    const { accepted, started } = await deps.fetcher.submit({ prefix, path, requestId });
    deps.background?.(c, started);
    deps.logger.info('fetch_boot_file accepted', {
      site: site.name,
      name: accepted.name,
      url: redactUrl(path),
      state: accepted.state,
      requestId,
    });
    // Empty 200 as smart-proxy answers; the download goes on in the background and its result is in the status API.
    return c.body('', 200);
  });
  app.route('/tftp', pxeconfigRoutes(deps, site));

  return app;
}
