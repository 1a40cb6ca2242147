/**
 * Site state (docs/sites.md): agents report what their TFTP root holds, operators read every site's latest report.
 * `POST /sites/<site>/report` needs scope read (http/auth.ts): agents hold read tokens.
 */
import { Hono } from 'hono';
import { InputError } from '../core/errors.js';
import { parseSiteReport, readSiteReports, writeSiteReport, type SiteInfo } from '../core/site-reports.js';
import { findSite } from '../core/sites.js';
import type { AppDeps } from './deps.js';

export function siteRoutes(deps: AppDeps): Hono {
  const app = new Hono();

  app.get('/', async (c) => {
    const reports = await readSiteReports(
      deps.store,
      deps.sites.map((s) => s.name),
    );
    const body: SiteInfo[] = deps.sites.map((s, i) => ({
      name: s.name,
      serverName: s.serverName,
      report: reports[i] ?? null,
    }));
    c.header('Cache-Control', 'no-cache');
    return c.json(body);
  });

  app.post('/:site/report', async (c) => {
    const site = findSite(deps.sites, c.req.param('site'));
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new InputError('body', 'is not valid JSON');
    }
    const report = parseSiteReport(body);
    if (report.site !== site.name)
      throw new InputError('site', `"${report.site}" is not the site of the URL ("${site.name}")`);
    await writeSiteReport(deps.store, report);
    return c.body(null, 204);
  });

  return app;
}
