import { Hono } from 'hono';
import { apiV1Routes } from './api-v1.js';
import { installAuth } from './auth.js';
import type { AppDeps } from './deps.js';
import { handleError } from './errors.js';
import { smartProxyRoutes } from './smart-proxy.js';

export type { AppDeps } from './deps.js';

/** The one Hono app every runtime serves; adapters only build `deps`. */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  app.onError(handleError(deps.logger));
  app.notFound((c) =>
    c.req.path.startsWith('/api/')
      ? c.json({ error: { code: 'not-found', message: `no route ${c.req.method} ${c.req.path}` } }, 404)
      : c.text(`no route ${c.req.method} ${c.req.path}`, 404),
  );
  installAuth(app, deps);
  app.get('/healthz', (c) => {
    // A store that ignores create-only writes cannot keep two writers apart: degraded, and said so loudly.
    const unsafe = deps.createOnly?.honoured === false;
    return c.json({
      status: unsafe ? 'degraded' : 'ok',
      version: deps.version,
      store: deps.store.driver,
      createOnly: deps.createOnly ?? null,
      ...(unsafe ? { warning: 'the store ignores create-only writes: run exactly one writer' } : {}),
    });
  });
  const [defaultSite] = deps.sites;
  if (defaultSite) app.route('/', smartProxyRoutes(deps, defaultSite));
  for (const site of deps.sites) app.route(`/sites/${site.name}`, smartProxyRoutes(deps, site));
  app.route('/api/v1', apiV1Routes(deps));
  return app;
}
