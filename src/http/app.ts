import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { createMetrics, scrape, siteLagOf } from '../core/metrics.js';
import { readSiteReports } from '../core/site-reports.js';
import { apiV1Routes } from './api-v1.js';
import { installAuth } from './auth.js';
import { dashboardRoutes } from './dashboard/routes.js';
import type { AppDeps } from './deps.js';
import { handleError } from './errors.js';
import { lifecycleRoutes } from './lifecycle.js';
import { openApiDocument } from './openapi.js';
import { requestIds } from './request-id.js';
import { smartProxyRoutes } from './smart-proxy.js';

export type { AppDeps } from './deps.js';

/**
 * Largest request body any route takes: a form or JSON with a prefix and a URL, or one boot config (pxelinux, grub
 * and iPXE configs and PXE default menus are kilobytes). Without it a client could make the server buffer any amount.
 */
export const MAX_BODY_BYTES = 1024 * 1024;

/** The one Hono app every runtime serves; adapters only build `deps`. */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  // First: every line logged about a request, refusals and errors included, carries its id.
  app.use('*', requestIds());
  app.onError(handleError(deps.logger));
  app.notFound((c) =>
    c.req.path.startsWith('/api/')
      ? c.json({ error: { code: 'not-found', message: `no route ${c.req.method} ${c.req.path}` } }, 404)
      : c.text(`no route ${c.req.method} ${c.req.path}`, 404),
  );
  const tokens = installAuth(app, deps);
  // After the guards: a caller who may not use a route learns nothing from the size of its body.
  const tooLarge = (c: Context) => {
    const message = `request body is larger than ${MAX_BODY_BYTES} bytes (1 MiB), the most any route takes`;
    return c.req.path.startsWith('/api/')
      ? c.json({ error: { code: 'payload-too-large', message } }, 413)
      : c.text(message, 413);
  };
  const streamedLimit = bodyLimit({ maxSize: MAX_BODY_BYTES, onError: tooLarge });
  app.use('*', async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    // A declared length is all the server will deliver (HTTP framing): checking the header is enough, and cheap.
    // Only a body of unknown length (chunked) is counted as it streams, which costs a Web stream per request.
    const declared = c.req.header('content-length');
    if (declared !== undefined && /^\d+$/.test(declared) && c.req.header('transfer-encoding') === undefined)
      return Number(declared) > MAX_BODY_BYTES ? tooLarge(c) : next();
    return streamedLimit(c, next);
  });
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
  // Open like /healthz (scrapers seldom carry tokens): labels hold outcomes and error codes, never names or URLs.
  const metrics = deps.metrics ?? createMetrics();
  // Each site's lag from the reports its agent stored (core/site-reports.ts), read at every scrape.
  const siteNames = deps.sites.map((s) => s.name);
  const storedLag = async () =>
    siteLagOf(
      (await readSiteReports(deps.store, siteNames)).filter((r) => r !== null),
      deps.clock.now(),
    );
  const siteLag = deps.siteLag ?? storedLag;
  app.get('/metrics', async (c) =>
    c.text(await scrape(metrics, siteLag, deps.logger), 200, {
      'content-type': 'text/plain; version=0.0.4; charset=utf-8',
    }),
  );
  const [defaultSite] = deps.sites;
  if (defaultSite) app.route('/', smartProxyRoutes(deps, defaultSite));
  for (const site of deps.sites) app.route(`/sites/${site.name}`, smartProxyRoutes(deps, site));
  // Open (http/auth.ts): the API's shape is no secret, and clients read it before they hold a token.
  app.get('/api/v1/openapi.json', (c) => c.json(openApiDocument(deps.version)));
  app.route('/api/v1', apiV1Routes(deps));
  app.route('/api/v1', lifecycleRoutes(deps));
  app.route('/', dashboardRoutes(deps, tokens));
  return app;
}
