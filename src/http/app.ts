import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { apiV1Routes } from './api-v1.js';
import { installAuth } from './auth.js';
import type { AppDeps } from './deps.js';
import { handleError } from './errors.js';
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
  app.onError(handleError(deps.logger));
  app.notFound((c) =>
    c.req.path.startsWith('/api/')
      ? c.json({ error: { code: 'not-found', message: `no route ${c.req.method} ${c.req.path}` } }, 404)
      : c.text(`no route ${c.req.method} ${c.req.path}`, 404),
  );
  installAuth(app, deps);
  // After the guards: a caller who may not use a route learns nothing from the size of its body.
  app.use(
    '*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => {
        const message = `request body is larger than ${MAX_BODY_BYTES} bytes (1 MiB), the most any route takes`;
        return c.req.path.startsWith('/api/')
          ? c.json({ error: { code: 'payload-too-large', message } }, 413)
          : c.text(message, 413);
      },
    }),
  );
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
