/**
 * Authentication for multi-site use: bearer tokens with scopes on the native API, the loopback rule for the
 * smart-proxy routes (Foreman sends no bearer token), the start refusal on a network address without tokens, and an
 * agent syncing from a server that requires a token. Route tests run through app.request() and a real socket.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authSettings, hashToken, readTokens, tokenListEntry, type AuthSettings } from '../../src/core/auth.js';
import { nodeSha256 } from '../../src/runtime/node/hasher.js';
import { fetchBootFile } from '../helpers/api.js';
import { createHarness, TRANSPORTS, type Harness } from '../helpers/app-harness.js';
import { startServeProcess, type ServeProcess } from '../helpers/serve-process.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

const TOKENS = { read: 'pxc_read-token-site-east', fetch: 'pxc_fetch-token-ci', admin: 'pxc_admin-token-ops' };
const LIST = [
  tokenListEntry({ id: 'site-east', sha256: hashToken(TOKENS.read, nodeSha256), scopes: ['read'] }),
  tokenListEntry({ id: 'ci', sha256: hashToken(TOKENS.fetch, nodeSha256), scopes: ['fetch'] }),
  tokenListEntry({ id: 'ops', sha256: hashToken(TOKENS.admin, nodeSha256), scopes: ['admin'] }),
].join(',');

/** As `serve --host 0.0.0.0 --tokens <LIST>` derives it. */
const withTokens = (openSmartProxy = false): AuthSettings =>
  authSettings({ host: '0.0.0.0', tokens: readTokens({ list: LIST }), insecureNoAuth: false, openSmartProxy });

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const SHA = 'a'.repeat(64);

describe.each(TRANSPORTS)('native API bearer tokens via %s', (transport) => {
  let h: Harness;
  let upstream: Upstream;

  beforeAll(async () => {
    upstream = await createUpstream();
    upstream.set('/images/vmlinuz', 'kernel bytes');
    h = await createHarness({ transport, sites: 'east', auth: withTokens() });
  });
  afterAll(async () => {
    await h.close();
    await upstream.close();
  });

  const post = (token?: string) =>
    h.request('/api/v1/fetch?wait=10', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? bearer(token) : {}) },
      body: JSON.stringify({ prefix: 'boot/t', path: upstream.url('/images/vmlinuz') }),
    });
  const error = async (res: Response) => ((await res.json()) as { error: { code: string; message: string } }).error;

  it('answers 401 with WWW-Authenticate: Bearer and says how to send a token when none is sent', async () => {
    for (const path of ['/api/v1/files', `/api/v1/blobs/${SHA}`, '/api/v1/sites/east/configs', '/api/v1/files/x']) {
      const res = await h.request(path);
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
      const err = await error(res);
      expect(err.code).toBe('unauthorized');
      expect(err.message).toContain('scope "read"');
      expect(err.message).toContain('send "Authorization: Bearer <token>"');
    }
    const res = await post();
    expect(res.status).toBe(401);
    expect((await error(res)).message).toContain('scope "fetch"');
    expect(upstream.count('/images/vmlinuz')).toBe(0);
  });

  it('answers 401 to a wrong token and to a non-bearer Authorization header', async () => {
    const wrong = await h.request('/api/v1/files', { headers: bearer('pxc_not-a-configured-token') });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="pxecache", error="invalid_token"');
    expect((await error(wrong)).message).toContain('not valid');
    // The configured hash is not a credential either.
    const hash = await h.request('/api/v1/files', { headers: bearer(hashToken(TOKENS.read, nodeSha256)) });
    expect(hash.status).toBe(401);
    const basic = await h.request('/api/v1/files', { headers: { authorization: 'Basic b3BzOnNlY3JldA==' } });
    expect(basic.status).toBe(401);
    expect((await error(basic)).message).toContain('not a bearer token');
  });

  it('lets a read token read everything an agent reads, and refuses it POST /api/v1/fetch with 403 naming fetch', async () => {
    const headers = bearer(TOKENS.read);
    expect((await h.request('/api/v1/files', { headers })).status).toBe(200);
    expect((await h.request('/api/v1/sites/east/configs', { headers })).status).toBe(200);
    // Past the guard: the route's own answers.
    expect((await h.request('/api/v1/files/boot/none', { headers })).status).toBe(404);
    expect((await h.request(`/api/v1/blobs/${SHA}`, { headers })).status).toBe(404);

    const res = await post(TOKENS.read);
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toContain('error="insufficient_scope", scope="fetch"');
    const err = await error(res);
    expect(err.code).toBe('forbidden');
    expect(err.message).toBe('token "site-east" lacks scope "fetch" needed for POST /api/v1/fetch (it has: read)');
    expect(upstream.count('/images/vmlinuz')).toBe(0);
  });

  it('lets a fetch token fetch (and only fetch)', async () => {
    const res = await post(TOKENS.fetch);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { state: string }).state).toBe('ready');
    const read = await h.request('/api/v1/files', { headers: bearer(TOKENS.fetch) });
    expect(read.status).toBe(403);
    expect((await error(read)).message).toContain('token "ci" lacks scope "read"');
  });

  it('lets an admin token do everything; only admin reaches /api/v1/admin', async () => {
    const headers = bearer(TOKENS.admin);
    expect((await post(TOKENS.admin)).status).toBe(200);
    const status = await h.request('/api/v1/files/boot/t-vmlinuz', { headers });
    expect(status.status).toBe(200);
    const { sha256 } = (await status.json()) as { sha256: string };
    expect((await h.request(`/api/v1/blobs/${sha256}`, { headers })).status).toBe(200);
    expect((await h.request('/api/v1/sites/east/configs', { headers })).status).toBe(200);
    // No admin route exists yet: admin gets the 404, a read token the 403.
    expect((await h.request('/api/v1/admin/rollback', { method: 'POST', headers })).status).toBe(404);
    const read = await h.request('/api/v1/admin/rollback', { method: 'POST', headers: bearer(TOKENS.read) });
    expect(read.status).toBe(403);
    expect((await error(read)).message).toContain('lacks scope "admin"');
  });

  it('keeps /healthz, /features and /version open (load balancers, Foreman "Refresh features")', async () => {
    for (const path of ['/healthz', '/features', '/version', '/sites/east/features', '/sites/east/version'])
      expect((await h.request(path)).status, path).toBe(200);
  });

  it('serves the smart-proxy routes to a loopback peer without a token (Foreman sends none)', async () => {
    expect((await h.request('/tftp/serverName')).status).toBe(200);
    expect((await h.request('/sites/east/v2/features')).status).toBe(200);
  });
});

describe('smart-proxy routes and the peer address (app.request with an injected remote address)', () => {
  const harnesses: Harness[] = [];
  afterAll(async () => {
    for (const h of harnesses) await h.close();
  });
  async function harness(remoteAddress: string, openSmartProxy = false) {
    const h = await createHarness({
      transport: 'app.request',
      sites: 'east',
      remoteAddress,
      auth: withTokens(openSmartProxy),
    });
    harnesses.push(h);
    return h;
  }
  const PROXY_ROUTES = ['/tftp/serverName', '/v2/features', '/sites/east/tftp/serverName', '/sites/east/v2/features'];

  it('refuses them from a non-loopback peer with 403 naming --open-smart-proxy, and starts nothing', async () => {
    const h = await harness('192.0.2.7');
    for (const path of PROXY_ROUTES) {
      const res = await h.request(path);
      expect(res.status, path).toBe(403);
      expect(await res.text()).toBe(
        'smart-proxy routes are loopback-only until client-certificate authentication is configured; start with ' +
          '--open-smart-proxy to accept them from the network (request from 192.0.2.7)',
      );
    }
    const post = await fetchBootFile(h.request, { prefix: 'boot/t', path: 'http://127.0.0.1:9/vmlinuz' });
    expect(post.status).toBe(403);
    const pxe = await h.request('/tftp/PXELinux/aa:bb:cc:dd:ee:ff', { method: 'POST', body: 'pxeconfig=x' });
    expect(pxe.status).toBe(403);
    expect((await h.request('/api/v1/files/boot/t-vmlinuz', { headers: bearer(TOKENS.read) })).status).toBe(404);
    expect(h.logs.filter((l) => l.msg === 'smart-proxy request refused')).toHaveLength(PROXY_ROUTES.length + 2);
    for (const path of ['/healthz', '/features', '/version', '/sites/east/features'])
      expect((await h.request(path)).status, path).toBe(200);
  });

  it('accepts them from a loopback peer, IPv4-mapped included', async () => {
    for (const remote of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
      const h = await harness(remote);
      for (const path of PROXY_ROUTES) expect((await h.request(path)).status, `${remote} ${path}`).toBe(200);
    }
  });

  it('accepts them from anyone with --open-smart-proxy, while the native API still needs its token', async () => {
    const h = await harness('192.0.2.7', true);
    for (const path of PROXY_ROUTES) expect((await h.request(path)).status, path).toBe(200);
    expect((await h.request('/api/v1/files')).status).toBe(401);
  });
});

describe('pxecache serve on a network address (real processes, built CLI)', () => {
  let dir: string;
  let upstream: Upstream;
  const running: ServeProcess[] = [];

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -p tsconfig.build.json" first`);
    dir = await mkdtemp(join(tmpdir(), 'pxecache-auth-'));
    upstream = await createUpstream();
    upstream.set('/images/vmlinuz', 'kernel bytes for the agent');
  });
  afterAll(async () => {
    for (const p of running) await p.stop();
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function serve(store: string, args: string[]) {
    const p = await startServeProcess(join(dir, store), args);
    running.push(p);
    return p;
  }
  /** The server's URL on loopback and on an address of this machine that is not loopback. */
  function urls(p: ServeProcess) {
    const port = new URL(p.url).port;
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
    if (!external) throw new Error('this test needs a non-loopback IPv4 interface to connect from');
    return { local: `http://127.0.0.1:${port}`, external: `http://${external}:${port}` };
  }

  it('refuses to start on 0.0.0.0 without tokens: exit 2, naming the options, creating nothing', async () => {
    const store = join(dir, 'refused-store');
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--host', '0.0.0.0', '--port', '0', '--store', `file:${store}`],
      {
        env: { PATH: process.env['PATH'] ?? '' },
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toContain('--host 0.0.0.0: a non-loopback address needs bearer tokens');
    expect(stderr).toMatch(/--tokens-file.*--tokens.*--insecure-no-auth/s);
    expect(existsSync(store)).toBe(false);
  });

  it('starts on 0.0.0.0 with --insecure-no-auth; smart-proxy routes answer loopback peers only', async () => {
    const p = await serve('insecure-store', ['--host', '0.0.0.0', '--insecure-no-auth']);
    expect(p.logs.some((l) => l.level === 'warn' && String(l.msg).startsWith('--insecure-no-auth'))).toBe(true);
    const { local, external } = urls(p);
    expect((await fetch(`${local}/tftp/serverName`)).status).toBe(200);
    // A real peer address from the Node adapter, not an injected one.
    const refused = await fetch(`${external}/tftp/serverName`);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toMatch(/^smart-proxy routes are loopback-only .* \(request from [0-9.]+\)$/);
    expect((await fetch(`${external}/features`)).status).toBe(200);
    expect((await fetch(`${external}/api/v1/files`)).status).toBe(200);
  });

  it('an agent with --token syncs from a server requiring tokens; without it, exit 1 naming 401', async () => {
    const tokensFile = join(dir, 'tokens.json');
    const tokens = readTokens({ list: LIST });
    await writeFile(tokensFile, JSON.stringify({ tokens }));
    const p = await serve('token-store', ['--host', '0.0.0.0', '--tokens-file', tokensFile]);
    const { local } = urls(p);
    expect(p.logs.find((l) => l.msg === 'authentication')).toMatchObject({
      tokens: 3,
      nativeApi: 'bearer token',
      smartProxy: 'loopback-only',
    });
    const fetched = await fetch(`${local}/api/v1/fetch?wait=10`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(TOKENS.admin) },
      body: JSON.stringify({ prefix: 'boot/t', path: upstream.url('/images/vmlinuz') }),
    });
    expect(fetched.status).toBe(200);

    const root = join(dir, 'tftpboot');
    const ok = await agentOnce(['--source', local, '--tftp-root', root], { PXECACHE_TOKEN: TOKENS.read });
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toContain('in sync');
    expect((await lstat(join(root, 'boot/t-vmlinuz'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(root, 'boot/t-vmlinuz'))).toMatch(/^t-vmlinuz-orig\/[^/]+\/vmlinuz$/);

    const flag = await agentOnce(['--source', local, '--tftp-root', join(dir, 'flag-root'), '--token', TOKENS.read]);
    expect(flag.code, flag.out).toBe(0);

    const none = await agentOnce(['--source', local, '--tftp-root', join(dir, 'no-token-root')]);
    expect(none.code).toBe(1);
    expect(none.out).toMatch(/GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\/changes: 401 .*Authorization: Bearer <token>/);

    const wrongScope = await agentOnce([
      '--source',
      local,
      '--tftp-root',
      join(dir, 'ci-root'),
      '--token',
      TOKENS.fetch,
    ]);
    expect(wrongScope.code).toBe(1);
    expect(wrongScope.out).toContain('403');
    expect(wrongScope.out).toContain('token \\"ci\\" lacks scope \\"read\\"');
  });
});

function agentOnce(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; out: string }>((resolve) => {
    execFile(
      process.execPath,
      [CLI, 'agent', '--once', ...args],
      { timeout: 30_000, env: { PATH: process.env['PATH'] ?? '', ...env } },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
  });
}
