/**
 * The dashboard's routes through the shared app (both transports): the sign-in cookie and the read/admin scopes,
 * forgery refused, the rollback and unpin forms moving the pointer as the API does, and text from the network
 * (agent messages, errors) escaped. Reports are stored with writeSiteReport here; test/e2e/dashboard.test.ts feeds
 * the dashboard from real agents and reads it in Chromium.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authSettings, hashToken, noAuth, readTokens, tokenListEntry } from '../../src/core/auth.js';
import type { FileStatus } from '../../src/core/records.js';
import { writeSiteReport, type SiteReport } from '../../src/core/site-reports.js';
import { nodeSha256 } from '../../src/runtime/node/hasher.js';
import { bytesOf, sha256 } from '../helpers/api.js';
import { createHarness, TRANSPORTS, type Harness } from '../helpers/app-harness.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';

const TOKENS = { read: 'pxc_dash-read-token', admin: 'pxc_dash-admin-token' };
const LIST = [
  tokenListEntry({ id: 'viewer', sha256: await hashToken(TOKENS.read, nodeSha256), scopes: ['read'] }),
  tokenListEntry({ id: 'ops', sha256: await hashToken(TOKENS.admin, nodeSha256), scopes: ['admin'] }),
].join(',');
const NAME = 'boot/dash-vmlinuz';
const HOSTILE = '<script>alert(1)</script> & "quoted"';
const version = (bytes: Buffer) => sha256(bytes).slice(0, 16);

function report(site: string, files: SiteReport['files'], extra: Partial<SiteReport> = {}): SiteReport {
  const at = new Date().toISOString();
  return {
    site,
    agent: { id: `agent-${site}`, version: '0.1.0' },
    at,
    lastSyncAt: at,
    lastSyncOk: true,
    cursor: null,
    files,
    configs: { ok: true, failed: 0 },
    errors: [],
    disk: { freeBytes: 5 * 1024 ** 3, totalBytes: 20 * 1024 ** 3 },
    intervalSeconds: 30,
    ...extra,
  };
}

describe.each(TRANSPORTS)('dashboard via %s', (transport) => {
  let h: Harness;
  let up: Upstream;
  const [v1, v2] = ['v1', 'v2'].map((s) => bytesOf(`dash-${s}`, 50_000)) as [Buffer, Buffer];

  beforeAll(async () => {
    up = await createUpstream();
    const auth = authSettings({
      host: '0.0.0.0',
      tokens: readTokens({ list: LIST }),
      insecureNoAuth: false,
      openSmartProxy: false,
    });
    h = await createHarness({ transport, auth, sites: 'east,west' });
    for (const bytes of [v1, v2]) {
      up.set('/images/vmlinuz', bytes);
      const res = await h.request('/api/v1/fetch?wait=10', {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: NAME, url: up.url('/images/vmlinuz') }),
      });
      expect(res.status).toBe(200);
    }
    await writeSiteReport(h.store, report('east', [{ name: NAME, version: version(v2), state: 'synced' }]));
    await writeSiteReport(
      h.store,
      report('west', [{ name: NAME, version: version(v1), state: 'failed', message: HOSTILE }], {
        errors: [HOSTILE],
        agent: { id: HOSTILE, version: '0.1.0' },
      }),
    );
  });
  afterAll(async () => {
    await h?.close();
    await up?.close();
  });

  const signIn = async (token: string) => {
    const res = await h.request('/dashboard/login', {
      method: 'POST',
      headers: { origin: h.origin, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, next: '/files/boot/dash-vmlinuz' }),
      redirect: 'manual',
    });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/files/boot/dash-vmlinuz');
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    return cookie.split(';')[0] as string;
  };
  const form = (path: string, cookie: string, fields: Record<string, string>, origin = h.origin) =>
    h.request(path, {
      method: 'POST',
      headers: { cookie, origin, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields),
      redirect: 'manual',
    });
  const status = async () =>
    (await (
      await h.request(`/api/v1/files/${NAME}`, { headers: { authorization: `Bearer ${TOKENS.read}` } })
    ).json()) as FileStatus;

  it('sends a browser without a token to the sign-in form and refuses a wrong token', async () => {
    const res = await h.request('/', { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/dashboard/login?next=%2F');
    const login = await h.request('/dashboard/login?next=//evil.example/');
    expect(await login.text()).toContain('name="next" value="/"');
    const wrong = await form('/dashboard/login', '', { token: 'pxc_wrong' });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('the token is not valid');
    expect((await h.request('/', { headers: { cookie: 'pxecache_token=pxc_wrong' } })).status).toBe(401);
  });

  it('shows the matrix with each site cell and escapes what agents sent', async () => {
    const cookie = await signIn(TOKENS.read);
    const res = await h.request('/', { headers: { cookie } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain(`<tr data-name="${NAME}">`);
    expect(html).toMatch(new RegExp(`data-site="east" data-freshness="up-to-date" data-version="${version(v2)}"`));
    expect(html).toMatch(new RegExp(`data-site="west" data-freshness="failed" data-version="${version(v1)}"`));
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;');
    expect(html).toContain('http-equiv="refresh"');
    expect(html).toContain('Free disk: 5.0 GiB of 20 GiB');
  });

  it('lets a read token see a name page but not roll back', async () => {
    const cookie = await signIn(TOKENS.read);
    const page = await (await h.request(`/files/${NAME}`, { headers: { cookie } })).text();
    expect(page).toContain(sha256(v1));
    expect(page).toMatch(new RegExp(`data-field="validators-version" class="mono">${version(v2)}<`));
    expect(page).toContain('rollback needs an admin token');
    const res = await form('/dashboard/rollback', cookie, { name: NAME, to: version(v1) });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('lacks scope &quot;admin&quot;');
    expect((await status()).version).toBe(version(v2));
  });

  it('refuses a rollback sent from another site, even with an admin cookie', async () => {
    const cookie = await signIn(TOKENS.admin);
    const res = await form('/dashboard/rollback', cookie, { name: NAME, to: version(v1) }, 'http://evil.example');
    expect(res.status).toBe(403);
    const fetchSite = await h.request('/dashboard/rollback', {
      method: 'POST',
      headers: { cookie, 'sec-fetch-site': 'cross-site', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ name: NAME, to: version(v1) }),
    });
    expect(fetchSite.status).toBe(403);
    expect((await status()).version).toBe(version(v2));
  });

  it('rolls back and unpins through the forms, as the API does', async () => {
    const cookie = await signIn(TOKENS.admin);
    const bad = await form('/dashboard/rollback', cookie, { name: NAME, to: 'ffffffffffffffff' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('to: &quot;ffffffffffffffff&quot; is not a kept version');
    const res = await form('/dashboard/rollback', cookie, { name: NAME, to: version(v1) });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`/files/${NAME}?done=rolled-back`);
    const after = await status();
    expect(after.version).toBe(version(v1));
    expect(after.pinned?.version).toBe(version(v1));
    const page = await (await h.request(`/files/${NAME}?done=rolled-back`, { headers: { cookie } })).text();
    expect(page).toContain('Rolled back and pinned');
    expect(page).toContain('Unpin</button>');
    const unpinned = await form('/dashboard/unpin', cookie, { name: NAME });
    expect(unpinned.headers.get('location')).toBe(`/files/${NAME}?done=unpinned`);
    expect((await status()).pinned).toBeNull();
  });

  it('answers 404 for an unknown name and 400 for an invalid one', async () => {
    const cookie = await signIn(TOKENS.read);
    expect((await h.request('/files/boot/none', { headers: { cookie } })).status).toBe(404);
    expect((await h.request('/files/boot/..%2Fx', { headers: { cookie } })).status).toBe(400);
  });
});

describe('dashboard without tokens', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({ transport: 'app.request', auth: noAuth() });
  });
  afterAll(() => h?.close());

  it('is open for reading, but still refuses forms from other sites', async () => {
    const res = await h.request('/');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('Nothing is published yet.');
    const forged = await h.request('/dashboard/unpin', {
      method: 'POST',
      headers: { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ name: NAME }),
    });
    expect(forged.status).toBe(403);
  });
});
