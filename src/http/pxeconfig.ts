import { Hono, type Context } from 'hono';
import { ConfigWriteError } from '../core/boot-configs.js';
import { NotFoundError } from '../core/errors.js';
import { validMac, variantOf, type Variant } from '../core/pxeconfig.js';
import type { Site } from '../core/sites.js';
import type { AppDeps } from './deps.js';
import { readParams, type Params } from './params.js';

/** The bootloader-universe parameters Foreman sends along; recorded with the config. */
const EXTRA_PARAMS = ['targetos', 'release', 'arch', 'bootfile_suffix'] as const;

/**
 * smart-proxy's pxeconfig routes (modules/tftp/tftp_api.rb), with its status codes and plain-text messages: 403 for
 * a bad MAC (checked first) or an unknown variant, 400 "TFTP: Failed to ..." when a write fails, 404 when a config
 * to read is missing, 200 with an empty body on success (deleting a missing config included).
 */
export function pxeconfigRoutes(deps: AppDeps, site: Site): Hono {
  const app = new Hono();

  function instantiate(c: Context, rawVariant: string, mac: string | null): Variant | Response {
    if (mac !== null && !validMac(mac)) return c.text(`Invalid MAC address: ${mac}`, 403);
    return variantOf(rawVariant) ?? c.text(`Unrecognized pxeboot config type: ${rawVariant}`, 403);
  }

  async function halt400(c: Context, what: string, action: () => Promise<void>) {
    try {
      await action();
    } catch (err) {
      if (err instanceof ConfigWriteError) return c.text(`TFTP: Failed to ${what}: ${err.message}`, 400);
      throw err;
    }
    return c.body('', 200);
  }

  async function create(c: Context, rawVariant: string, mac: string) {
    const variant = instantiate(c, rawVariant, mac);
    if (variant instanceof Response) return variant;
    const params = await readParams(c);
    const config = params.pxeconfig ?? params.syslinux_config;
    return halt400(c, 'create pxe config file', async () => {
      if (config === undefined) throw new ConfigWriteError('Invalid parameters received');
      await deps.configs.set(site.name, variant, mac, config, extras(params));
    });
  }

  async function remove(c: Context, rawVariant: string, mac: string) {
    const variant = instantiate(c, rawVariant, mac);
    if (variant instanceof Response) return variant;
    return halt400(c, 'delete pxe config file', () => deps.configs.remove(site.name, variant, mac));
  }

  async function createDefault(c: Context, rawVariant: string) {
    const variant = instantiate(c, rawVariant, null);
    if (variant instanceof Response) return variant;
    const params = await readParams(c);
    return halt400(c, 'create PXE default file', async () => {
      if (params.menu === undefined) throw new ConfigWriteError('Default config not supplied');
      await deps.configs.createDefault(site.name, variant, params.menu, extras(params));
    });
  }

  // Registration order matters as in Sinatra: fixed paths before the `/:mac` catch-alls.
  app.post('/create_default', (c) => createDefault(c, 'syslinux'));
  app.post('/:variant/create_default', (c) => createDefault(c, c.req.param('variant')));
  app.get('/:variant/:mac', async (c) => {
    const variant = instantiate(c, c.req.param('variant'), c.req.param('mac'));
    if (variant instanceof Response) return variant;
    try {
      const bytes = await deps.configs.get(site.name, variant, c.req.param('mac'));
      return c.body(bytes as Uint8Array<ArrayBuffer>, 200, { 'content-type': 'text/plain; charset=utf-8' });
    } catch (err) {
      if (err instanceof NotFoundError) return c.text(`TFTP: Failed to retrieve pxe config file: ${err.message}`, 404);
      throw err;
    }
  });
  app.post('/:variant/:mac', (c) => create(c, c.req.param('variant'), c.req.param('mac')));
  app.delete('/:variant/:mac', (c) => remove(c, c.req.param('variant'), c.req.param('mac')));
  app.post('/:mac', (c) => create(c, 'syslinux', c.req.param('mac')));
  app.delete('/:mac', (c) => remove(c, 'syslinux', c.req.param('mac')));
  return app;
}

function extras(params: Params): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of EXTRA_PARAMS) {
    const v = params[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}
