/** The site routes (http/sites.ts) through app.request() and a real socket: store, list, and every refusal. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SiteInfo, SiteReport } from '../../src/core/site-reports.js';
import { createHarness, TRANSPORTS, type Harness } from '../helpers/app-harness.js';

const report = (over: Partial<SiteReport> = {}): SiteReport => ({
  site: 'east',
  agent: { id: 'edge-east', version: '0.1.0' },
  at: new Date().toISOString(),
  lastSyncAt: null,
  lastSyncOk: true,
  cursor: null,
  files: [{ name: 'boot/a-vmlinuz', version: null, state: 'failed', message: 'no space left on device' }],
  configs: { ok: true, failed: 0 },
  errors: [],
  disk: null,
  intervalSeconds: 60,
  ...over,
});

describe.each(TRANSPORTS)('site routes via %s', (transport) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({ transport, sites: 'east=10.0.0.1,west' });
  });
  afterAll(() => h.close());

  const post = (site: string, body: unknown) =>
    h.request(`/api/v1/sites/${site}/report`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const sites = async () => (await (await h.request('/api/v1/sites')).json()) as SiteInfo[];
  const fieldOf = async (res: Response) => ((await res.json()) as { error: { field?: string } }).error.field;

  it('lists every configured site, null until its agent reports, then the latest report', async () => {
    expect(await sites()).toEqual([
      { name: 'default', serverName: '', report: null },
      { name: 'east', serverName: '10.0.0.1', report: null },
      { name: 'west', serverName: '', report: null },
    ]);
    expect((await post('east', report())).status).toBe(204);
    expect((await post('east', report({ cursor: '9' }))).status).toBe(204);
    const east = (await sites()).find((s) => s.name === 'east')!;
    expect(east.report).toEqual(report({ cursor: '9', at: east.report!.at }));
  });

  it('refuses bad bodies with 400 naming the field, and an unknown site with 404, storing nothing', async () => {
    const res = await post('west', { ...report({ site: 'west' }), intervalSeconds: 0 });
    expect(res.status).toBe(400);
    expect(await fieldOf(res)).toBe('intervalSeconds');
    expect(await fieldOf(await post('west', '{not json'))).toBe('body');
    expect(await fieldOf(await post('west', report({ site: 'east' })))).toBe('site');
    const unknown = await post('north', report({ site: 'north' }));
    expect(unknown.status).toBe(404);
    expect((await sites()).find((s) => s.name === 'west')!.report).toBeNull();
  });
});
