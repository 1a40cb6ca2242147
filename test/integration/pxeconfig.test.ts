/**
 * smart-proxy's pxeconfig routes driven the way Foreman's ProxyAPI::TFTP calls them (form-encoded bodies,
 * `Accept: application/json`, `X-Request-Id`), compared with smart-proxy's behaviour. Each case names the test of
 * theforeman/smart-proxy it mirrors (test/tftp/tftp_api_test.rb, test/tftp/tftp_test.rb) or the server.rb method
 * whose file names it checks. Every test runs through app.request() and a real socket.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keys } from '../../src/core/object-keys.js';
import type { Changes, ConfigCatalog, ConfigRecord } from '../../src/core/records.js';
import { getJson } from '../../src/storage/object-store.js';
import { createHarness, listTree, TRANSPORTS, type Harness } from '../helpers/app-harness.js';

const MAC = 'aa:bb:cc:dd:ee:ff';
const MAC64 = 'aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd';

describe.each(TRANSPORTS)('pxeconfig routes via %s', (transport) => {
  let h: Harness;
  let requestId = 0;

  beforeEach(async () => {
    h = await createHarness({ transport, serverName: 'tftp.default.example', sites: 'east=10.1.0.5,west' });
  });
  afterEach(async () => {
    await h.close();
  });

  /** As ProxyAPI::TFTP sends it (RestClient with a form payload). */
  function foreman(method: string, path: string, form?: Record<string, string>) {
    const headers: Record<string, string> = { accept: 'application/json', 'x-request-id': `req-${++requestId}` };
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    return h.request(path, { method, headers, ...(form ? { body: new URLSearchParams(form).toString() } : {}) });
  }
  const reply = async (res: Response) => ({ status: res.status, body: await res.text() });
  const catalog = async (site = 'default') =>
    (await (await h.request(`/api/v1/sites/${site}/configs`)).json()) as ConfigCatalog;
  const livePaths = async (site = 'default') =>
    (await catalog(site)).entries.filter((e) => !e.deleted).map((e) => e.path);

  // tftp_api_test.rb test_api_can_create_config (legacy POST /tftp/:mac is Syslinux)
  it('creates a config with the legacy route: 200, empty body', async () => {
    expect(await reply(await foreman('POST', `/tftp/${MAC}`, { pxeconfig: 'foo' }))).toEqual({ status: 200, body: '' });
    expect(await livePaths()).toEqual(['pxelinux.cfg/01-aa-bb-cc-dd-ee-ff']);
  });

  // tftp_api_test.rb test_api_can_create_config_64bit
  it('accepts a 64-bit (InfiniBand) MAC', async () => {
    expect(await reply(await foreman('POST', `/tftp/${MAC64}`, { pxeconfig: 'foo' }))).toEqual({
      status: 200,
      body: '',
    });
    expect(await livePaths()).toEqual([`pxelinux.cfg/01-${MAC64.replace(/:/g, '-')}`]);
  });

  // tftp_api_test.rb test_api_returns_error_when_invalid_mac
  it('answers 403 "Invalid MAC address" for a bad MAC and writes nothing', async () => {
    const before = await listTree(h.storeDir);
    expect(await reply(await foreman('POST', '/tftp/aa:bb:cc:00:11:zz', { pxeconfig: 'foo' }))).toEqual({
      status: 403,
      body: 'Invalid MAC address: aa:bb:cc:00:11:zz',
    });
    for (const bad of [
      'aa-bb-cc-dd-ee-ff',
      'aa:bb:cc:dd:ee',
      'aabbccddeeff',
      'aa:bb:cc:dd:ee:ff:00',
      'aaa:bb:cc:dd:ee:ff',
    ])
      expect((await foreman('POST', `/tftp/PXELinux/${bad}`, { pxeconfig: 'x' })).status).toBe(403);
    expect(await listTree(h.storeDir)).toEqual(before);
  });

  // tftp_api_test.rb test_instantiate_nonexisting; the MAC is checked first (instantiate)
  it('answers 403 "Unrecognized pxeboot config type" for an unknown variant', async () => {
    expect(await reply(await foreman('POST', `/tftp/Server/${MAC}`, { pxeconfig: 'foo' }))).toEqual({
      status: 403,
      body: 'Unrecognized pxeboot config type: Server',
    });
    expect(await reply(await foreman('POST', '/tftp/Server/zz', { pxeconfig: 'foo' }))).toEqual({
      status: 403,
      body: 'Invalid MAC address: zz',
    });
    expect((await foreman('POST', '/tftp/Server/create_default', { menu: 'm' })).status).toBe(403);
  });

  // tftp_api_test.rb test_api_can_read_config
  it('reads a config back with GET /tftp/:variant/:mac', async () => {
    await foreman('POST', `/tftp/PXELinux/${MAC}`, { pxeconfig: 'DEFAULT linux\nLABEL linux\n' });
    expect(await reply(await foreman('GET', `/tftp/syslinux/${MAC}`))).toEqual({
      status: 200,
      body: 'DEFAULT linux\nLABEL linux\n',
    });
  });

  // server.rb Server#get raises "File ... not found"; tftp_api.rb answers 404 with that message
  it('answers 404 for a config that does not exist', async () => {
    const res = await reply(await foreman('GET', `/tftp/PXELinux/${MAC}`));
    expect(res.status).toBe(404);
    expect(res.body).toBe('TFTP: Failed to retrieve pxe config file: File pxelinux.cfg/01-aa-bb-cc-dd-ee-ff not found');
  });

  // tftp_api_test.rb test_api_can_remove_config; server.rb delete_file skips missing files
  it('deletes with DELETE (legacy and variant forms), 200 even when nothing is there', async () => {
    await foreman('POST', `/tftp/${MAC}`, { pxeconfig: 'foo' });
    expect(await reply(await foreman('DELETE', `/tftp/${MAC}`))).toEqual({ status: 200, body: '' });
    expect(await livePaths()).toEqual([]);
    expect((await catalog()).entries.map((e) => [e.path, e.deleted])).toEqual([
      ['pxelinux.cfg/01-aa-bb-cc-dd-ee-ff', true],
    ]);
    expect(await reply(await foreman('DELETE', `/tftp/PXEGrub2/${MAC}`))).toEqual({ status: 200, body: '' });
    expect((await foreman('GET', `/tftp/PXELinux/${MAC}`)).status).toBe(404);
  });

  // tftp_api_test.rb test_api_can_create_defatult (legacy /tftp/create_default is Syslinux)
  it('creates the default menu with POST /tftp/create_default and /tftp/:variant/create_default', async () => {
    expect(await reply(await foreman('POST', '/tftp/create_default', { menu: 'bar' }))).toEqual({
      status: 200,
      body: '',
    });
    expect(await reply(await foreman('POST', '/tftp/PXEGrub2/create_default', { menu: 'grub menu' }))).toEqual({
      status: 200,
      body: '',
    });
    expect(await livePaths()).toEqual(['grub2/grub.cfg', 'pxelinux.cfg/default']);
  });

  // server.rb Server#set: raise "Invalid parameters received" if config nil
  it('answers 400 when pxeconfig is missing, and accepts the legacy syslinux_config', async () => {
    expect(await reply(await foreman('POST', `/tftp/PXELinux/${MAC}`, { other: 'x' }))).toEqual({
      status: 400,
      body: 'TFTP: Failed to create pxe config file: Invalid parameters received',
    });
    expect((await foreman('POST', `/tftp/PXELinux/${MAC}`, { syslinux_config: 'legacy' })).status).toBe(200);
    expect(await reply(await foreman('GET', `/tftp/PXELinux/${MAC}`))).toEqual({ status: 200, body: 'legacy' });
  });

  // server.rb Server#create_default: raise "Default config not supplied" if config nil
  it('answers 400 when the default menu is missing', async () => {
    expect(await reply(await foreman('POST', '/tftp/PXELinux/create_default', {}))).toEqual({
      status: 400,
      body: 'TFTP: Failed to create PXE default file: Default config not supplied',
    });
  });

  // server.rb: every variant's pxeconfig_file and pxe_default, with Foreman's variant spelling
  it.each([
    ['PXELinux', ['pxelinux.cfg/01-aa-bb-cc-dd-ee-ff'], ['pxelinux.cfg/default']],
    ['Syslinux', ['pxelinux.cfg/01-aa-bb-cc-dd-ee-ff'], ['pxelinux.cfg/default']],
    ['PXEGrub', ['grub/01-AA-BB-CC-DD-EE-FF', 'grub/menu.lst.01AABBCCDDEEFF'], ['grub/efidefault', 'grub/menu.lst']],
    ['PXEGrub2', ['grub2/grub.cfg-01-aa-bb-cc-dd-ee-ff', 'grub2/grub.cfg-aa:bb:cc:dd:ee:ff'], ['grub2/grub.cfg']],
    ['ZTP', ['ztp.cfg/AABBCCDDEEFF', 'ztp.cfg/AABBCCDDEEFF.cfg'], null],
    ['POAP', ['poap.cfg/AABBCCDDEEFF'], null],
    ['iPXE', ['pxelinux.cfg/01-aa-bb-cc-dd-ee-ff.ipxe'], ['pxelinux.cfg/default.ipxe']],
  ])('%s writes %j and default %j', async (variant, files, defaults) => {
    expect((await foreman('POST', `/tftp/${variant}/AA:BB:CC:DD:EE:FF`, { pxeconfig: 'cfg' })).status).toBe(200);
    expect(await livePaths()).toEqual(files);
    if (defaults) {
      await foreman('DELETE', `/tftp/${variant}/AA:BB:CC:DD:EE:FF`);
      expect((await foreman('POST', `/tftp/${variant}/create_default`, { menu: 'menu' })).status).toBe(200);
      expect(await livePaths()).toEqual(defaults);
    }
  });

  // server.rb Ztp/Poap pxe_default is the directory's own name: File.open on a directory fails -> 400
  it('refuses the Ztp default while host configs exist under ztp.cfg/, as smart-proxy fails there', async () => {
    await foreman('POST', `/tftp/ZTP/${MAC}`, { pxeconfig: 'host' });
    const res = await reply(await foreman('POST', '/tftp/ZTP/create_default', { menu: 'm' }));
    expect(res.status).toBe(400);
    expect(res.body).toMatch(/^TFTP: Failed to create PXE default file: Is a directory/);
    await foreman('DELETE', `/tftp/ZTP/${MAC}`);
    expect((await foreman('POST', '/tftp/ZTP/create_default', { menu: 'm' })).status).toBe(200);
    expect((await foreman('POST', `/tftp/ZTP/${MAC}`, { pxeconfig: 'host' })).status).toBe(400);
  });

  it('records the bootloader-universe parameters Foreman sends along', async () => {
    await foreman('POST', `/tftp/PXEGrub2/${MAC}`, {
      pxeconfig: 'cfg',
      targetos: 'redhat',
      release: '9.4',
      arch: 'x86_64',
      bootfile_suffix: 'x64',
    });
    const record = await getJson<ConfigRecord>(h.store, keys.config('default', 'grub2/grub.cfg-01-aa-bb-cc-dd-ee-ff'));
    expect(record?.params).toEqual({ targetos: 'redhat', release: '9.4', arch: 'x86_64', bootfile_suffix: 'x64' });
  });

  describe('per-site virtual proxies', () => {
    it('keeps configs per site: the same MAC on two sites are two configs', async () => {
      await foreman('POST', `/sites/east/tftp/PXELinux/${MAC}`, { pxeconfig: 'east config' });
      await foreman('POST', `/tftp/PXELinux/${MAC}`, { pxeconfig: 'default config' });
      expect(await reply(await foreman('GET', `/sites/east/tftp/PXELinux/${MAC}`))).toEqual({
        status: 200,
        body: 'east config',
      });
      expect(await reply(await foreman('GET', `/tftp/PXELinux/${MAC}`))).toEqual({
        status: 200,
        body: 'default config',
      });
      expect((await foreman('GET', `/sites/west/tftp/PXELinux/${MAC}`)).status).toBe(404);
      await foreman('DELETE', `/sites/east/tftp/PXELinux/${MAC}`);
      expect(await livePaths('east')).toEqual([]);
      expect(await livePaths('default')).toEqual(['pxelinux.cfg/01-aa-bb-cc-dd-ee-ff']);
    });

    it('answers features, v2 features and serverName per site', async () => {
      for (const [prefix, serverName] of [
        ['', 'tftp.default.example'],
        ['/sites/default', 'tftp.default.example'],
        ['/sites/east', '10.1.0.5'],
        ['/sites/west', ''],
      ] as const) {
        expect(await (await h.request(`${prefix}/features`)).json()).toContain('tftp');
        expect(await (await h.request(`${prefix}/tftp/serverName`)).json()).toEqual({ serverName });
        const v2 = (await (await h.request(`${prefix}/v2/features`)).json()) as {
          tftp: { state: string; settings: { tftp_servername: string | null } };
        };
        expect(v2.tftp.state).toBe('running');
        expect(v2.tftp.settings.tftp_servername).toBe(serverName || null);
      }
    });

    it('shares boot files between sites: fetch_boot_file exists under every site', async () => {
      const res = await foreman('POST', '/sites/east/tftp/fetch_boot_file', { prefix: '../x', path: 'http://h/v' });
      expect(res.status).toBe(400);
      expect(await res.text()).toMatch(/^prefix:/);
    });

    it('answers 404 for a site that is not configured', async () => {
      expect((await foreman('POST', `/sites/nowhere/tftp/PXELinux/${MAC}`, { pxeconfig: 'x' })).status).toBe(404);
      expect((await h.request('/api/v1/sites/nowhere/configs')).status).toBe(404);
    });
  });

  it('serves the site config catalog with ETag and 304', async () => {
    const first = await h.request('/api/v1/sites/default/configs');
    const etag = first.headers.get('etag') ?? '';
    expect(etag).toMatch(/^".+"$/);
    expect((await h.request('/api/v1/sites/default/configs', { headers: { 'if-none-match': etag } })).status).toBe(304);
    await foreman('POST', `/tftp/PXELinux/${MAC}`, { pxeconfig: 'x' });
    const changed = await h.request('/api/v1/sites/default/configs', { headers: { 'if-none-match': etag } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(etag);
  });

  it("carries each site's config writes and deletions in the change feed, and no other site's", async () => {
    const feed = async (query: string) => {
      const res = await h.request(`/api/v1/changes?${query}`);
      return { status: res.status, body: res.status === 200 ? ((await res.json()) as Changes) : null };
    };
    const start = (await feed('site=default')).body;
    expect(start).toMatchObject({ complete: true, site: 'default', configs: [] });
    const east = (await feed('site=east')).body?.cursor ?? '';
    const path = 'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff';

    await foreman('POST', `/tftp/PXELinux/${MAC}`, { pxeconfig: 'x' });
    const written = await feed(`site=default&since=${start?.cursor}`);
    expect(written.body).toMatchObject({ complete: false, files: [] });
    expect(written.body?.configs.map((c) => [c.path, c.deleted])).toEqual([[path, false]]);
    await foreman('DELETE', `/tftp/PXELinux/${MAC}`);
    const deleted = await feed(`site=default&since=${written.body?.cursor}`);
    expect(deleted.body?.configs.map((c) => [c.path, c.deleted])).toEqual([[path, true]]);
    expect((await feed(`site=default&since=${deleted.body?.cursor}`)).status).toBe(304);

    // East's feed moved on (one log for all sites) without carrying default's configs.
    const forEast = await feed(`site=east&since=${east}`);
    expect(forEast.body).toMatchObject({ complete: false, configs: [], files: [], cursor: deleted.body?.cursor });
    const unknown = await h.request('/api/v1/changes?site=nowhere');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: 'unknown-site' } });
    expect((await feed('site=default&since=-1')).status).toBe(400);
  });
});

describe('config catalog long-poll', () => {
  it('wakes a pending long-poll when a config is written (no poll interval to wait out)', async () => {
    // The poll interval is far longer than the test's timeout: only the in-process change signal can answer in time.
    const h = await createHarness({ transport: 'socket', catalogPollMs: 600_000 });
    try {
      const first = await h.request('/api/v1/sites/default/configs');
      const etag = first.headers.get('etag') ?? '';
      const pending = h.request('/api/v1/sites/default/configs?wait=120', { headers: { 'if-none-match': etag } });
      await new Promise((r) => setTimeout(r, 100));
      const write = await h.request(`/tftp/PXELinux/${MAC}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'pxeconfig=woken',
      });
      expect(write.status).toBe(200);
      const res = await pending;
      expect(res.status).toBe(200);
      expect(((await res.json()) as ConfigCatalog).entries.map((e) => e.path)).toEqual([
        'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff',
      ]);
    } finally {
      await h.close();
    }
  }, 15_000);
});
