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
import {
  authSettings,
  hashToken,
  parseTrustedHosts,
  readTokens,
  tokenListEntry,
  type AuthSettings,
} from '../../src/core/auth.js';
import { nodeSha256 } from '../../src/runtime/node/hasher.js';
import { fetchBootFile } from '../helpers/api.js';
import { createHarness, TRANSPORTS, type Harness } from '../helpers/app-harness.js';
import { startServeProcess, type ServeProcess } from '../helpers/serve-process.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

const TOKENS = { read: 'pxc_read-token-site-east', fetch: 'pxc_fetch-token-ci', admin: 'pxc_admin-token-ops' };
const LIST = [
  tokenListEntry({ id: 'site-east', sha256: await hashToken(TOKENS.read, nodeSha256), scopes: ['read'] }),
  tokenListEntry({ id: 'ci', sha256: await hashToken(TOKENS.fetch, nodeSha256), scopes: ['fetch'] }),
  tokenListEntry({ id: 'ops', sha256: await hashToken(TOKENS.admin, nodeSha256), scopes: ['admin'] }),
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
    const hash = await h.request('/api/v1/files', { headers: bearer(await hashToken(TOKENS.read, nodeSha256)) });
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
        'smart-proxy routes over plain HTTP answer loopback clients only: connect over HTTPS (--https-port) with a ' +
          'client certificate whose CN is in --trusted-hosts, or start with --open-smart-proxy to accept them from ' +
          'the network (request from 192.0.2.7)',
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

describe('smart-proxy routes and the client certificate (app.request with an injected verified certificate)', () => {
  const harnesses: Harness[] = [];
  afterAll(async () => {
    for (const h of harnesses) await h.close();
  });
  async function harness(remoteAddress: string, cn: string | null, openSmartProxy = false) {
    const auth = authSettings({
      host: '0.0.0.0',
      tokens: readTokens({ list: LIST }),
      insecureNoAuth: false,
      openSmartProxy,
      trustedHosts: parseTrustedHosts('foreman.example.com'),
    });
    const h = await createHarness({
      transport: 'app.request',
      sites: 'east',
      remoteAddress,
      auth,
      clientCertificate: { cn },
    });
    harnesses.push(h);
    return h;
  }
  const PROXY_ROUTES = ['/tftp/serverName', '/v2/features', '/sites/east/tftp/serverName', '/sites/east/v2/features'];

  it('lets a trusted CN in from any address (matched case-insensitively), with an audit line naming it', async () => {
    for (const cn of ['foreman.example.com', 'Foreman.Example.COM']) {
      const h = await harness('192.0.2.7', cn);
      for (const path of PROXY_ROUTES) expect((await h.request(path)).status, `${cn} ${path}`).toBe(200);
      expect(h.logs).toContainEqual({
        level: 'info',
        msg: 'smart-proxy request',
        fields: {
          client: 'foreman.example.com',
          method: 'GET',
          path: '/v2/features',
          remote: '192.0.2.7',
          requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
          status: 200,
        },
      });
    }
  });

  it('refuses any other CN with 403 "Untrusted client", from loopback and with --open-smart-proxy too', async () => {
    for (const [remote, open] of [
      ['127.0.0.1', false],
      ['192.0.2.7', true],
    ] as const) {
      const h = await harness(remote, 'intruder.example.com', open);
      const res = await h.request('/sites/east/tftp/serverName');
      expect(res.status).toBe(403);
      expect(await res.text()).toBe(
        'Untrusted client intruder.example.com attempted to access /sites/east/tftp/serverName. Check --trusted-hosts',
      );
      const post = await fetchBootFile(h.request, { prefix: 'boot/t', path: 'http://127.0.0.1:9/vmlinuz' });
      expect(post.status).toBe(403);
    }
    const none = await harness('192.0.2.7', null);
    const res = await none.request('/tftp/serverName');
    expect(res.status).toBe(403);
    expect(await res.text()).toBe('could not read CN from the client certificate');
  });

  it('grants no native API scope to a trusted certificate', async () => {
    const h = await harness('192.0.2.7', 'foreman.example.com');
    expect((await h.request('/api/v1/files')).status).toBe(401);
    expect((await h.request('/api/v1/files', { headers: bearer(TOKENS.read) })).status).toBe(200);
  });
});

describe('failed bearer-token attempts and the audit trail (app.request, one app, several peer addresses)', () => {
  let remote = '192.0.2.7';
  const harnesses: Harness[] = [];
  afterAll(async () => {
    for (const h of harnesses) await h.close();
  });
  async function harness(failureLimit: number) {
    remote = '192.0.2.7';
    const auth = authSettings({
      host: '0.0.0.0',
      tokens: readTokens({ list: LIST }),
      insecureNoAuth: false,
      openSmartProxy: false,
      failureLimit,
    });
    const h = await createHarness({ transport: 'app.request', remoteAddress: () => remote, auth });
    harnesses.push(h);
    return h;
  }
  const get = (h: Harness, token?: string) =>
    h.request('/api/v1/files', token === undefined ? {} : { headers: bearer(token) });

  it('answers 429 with Retry-After after N failures from one address, to every request of that address only', async () => {
    const h = await harness(3);
    // Successful requests do not count.
    for (let i = 0; i < 5; i++) expect((await get(h, TOKENS.read)).status).toBe(200);
    expect((await get(h)).status).toBe(401);
    expect((await get(h, 'pxc_guess-1')).status).toBe(401);
    expect((await h.request('/api/v1/files', { headers: { authorization: 'Basic eDp5' } })).status).toBe(401);
    const limited = await get(h, 'pxc_guess-2');
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await limited.json()).toEqual({
      error: {
        code: 'rate-limited',
        message: `too many failed authentication attempts from 192.0.2.7: retry after ${retryAfter} s (at most 3 per minute)`,
      },
    });
    // While blocked, a valid token gets the same 429: otherwise the answer would tell a guesser when it hit.
    expect((await get(h, TOKENS.read)).status).toBe(429);
    // Another address is not affected, and has its own budget.
    remote = '192.0.2.8';
    expect((await get(h, TOKENS.read)).status).toBe(200);
    expect((await get(h, 'pxc_guess-3')).status).toBe(401);
    expect((await get(h, TOKENS.admin)).status).toBe(200);
    expect(h.logs.filter((l) => l.fields?.['status'] === 429)).toHaveLength(2);
  });

  it('does not count a valid token lacking the scope (403) as a failed attempt', async () => {
    const h = await harness(2);
    for (let i = 0; i < 5; i++) expect((await get(h, TOKENS.fetch)).status).toBe(403);
    expect((await get(h, TOKENS.read)).status).toBe(200);
  });

  it('logs one audit line per authenticated request: token id, method, path, status, remote; never the token', async () => {
    const h = await harness(10);
    expect((await get(h, TOKENS.read)).status).toBe(200);
    expect((await h.request('/api/v1/files/boot/none', { headers: bearer(TOKENS.read) })).status).toBe(404);
    expect((await get(h, TOKENS.fetch)).status).toBe(403);
    expect((await get(h, 'pxc_wrong')).status).toBe(401);
    const audit = h.logs.filter((l) => l.msg.startsWith('api request'));
    // Each line carries its request's id (http/request-id.ts): a new one per request here.
    const requestId = expect.stringMatching(/^[0-9a-f-]{36}$/);
    expect(audit).toEqual([
      {
        level: 'info',
        msg: 'api request',
        fields: {
          token: 'site-east',
          method: 'GET',
          path: '/api/v1/files',
          remote: '192.0.2.7',
          requestId,
          status: 200,
        },
      },
      {
        level: 'info',
        msg: 'api request',
        fields: {
          token: 'site-east',
          method: 'GET',
          path: '/api/v1/files/boot/none',
          remote: '192.0.2.7',
          requestId,
          status: 404,
        },
      },
      {
        level: 'warn',
        msg: 'api request refused',
        fields: { token: 'ci', method: 'GET', path: '/api/v1/files', remote: '192.0.2.7', requestId, status: 403 },
      },
      {
        level: 'warn',
        msg: 'api request refused',
        fields: { method: 'GET', path: '/api/v1/files', remote: '192.0.2.7', requestId, status: 401 },
      },
    ]);
    const all = JSON.stringify(h.logs);
    for (const secret of [...Object.values(TOKENS), 'pxc_wrong']) expect(all).not.toContain(secret);
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
    expect(await refused.text()).toMatch(
      /^smart-proxy routes over plain HTTP answer loopback clients only: .* \(request from [0-9.]+\)$/,
    );
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
  it('rotates --tokens-file without a restart: the new token works, the old one gets 401; a broken file changes nothing', async () => {
    const tokensFile = join(dir, 'rotating-tokens.json');
    const ROTATED = 'pxc_rotated-token-site-east';
    const write = async (token: string) =>
      writeFile(
        tokensFile,
        JSON.stringify({ tokens: [{ id: 'site-east', sha256: await hashToken(token, nodeSha256), scopes: ['read'] }] }),
      );
    await write(TOKENS.read);
    const p = await serve('rotation-store', ['--tokens-file', tokensFile]);
    const get = (token: string) => fetch(`${p.url}/api/v1/files`, { headers: bearer(token) });
    expect((await get(TOKENS.read)).status).toBe(200);
    expect((await get(ROTATED)).status).toBe(401);

    await write(ROTATED);
    // Bounded: fs.watch reacts within milliseconds, the stat fallback within 2 s.
    await waitFor(
      'the rotated token in force',
      async () => {
        const [fresh, old] = [(await get(ROTATED)).status, (await get(TOKENS.read)).status];
        return { done: fresh === 200 && old === 401, value: { fresh, old } };
      },
      { timeoutMs: 5_000, intervalMs: 50 },
    );
    expect(p.logs).toContainEqual(
      expect.objectContaining({
        msg: 'tokens reloaded',
        reason: 'change',
        added: [],
        removed: [],
        changed: ['site-east'],
      }),
    );

    await writeFile(tokensFile, '{"tokens": [{"id": "site-east", ');
    await waitFor('the reload error', async () => {
      const line = p.logs.find((l) => l.msg === 'tokens-file reload failed: keeping the previous tokens');
      return { done: line !== undefined, value: line };
    });
    expect((await get(ROTATED)).status).toBe(200);

    // SIGHUP re-reads (here: still broken, so an error naming SIGHUP) and does not end the process.
    process.kill(p.pid, 'SIGHUP');
    await waitFor('the SIGHUP reload', async () => {
      const line = p.logs.find(
        (l) => String(l.msg).startsWith('tokens-file reload failed') && l['reason'] === 'SIGHUP',
      );
      return { done: line !== undefined, value: line };
    });
    expect((await fetch(`${p.url}/healthz`)).status).toBe(200);
    expect((await get(ROTATED)).status).toBe(200);

    // The audit trail names the token id with each request, and no log line holds a token.
    expect(p.logs).toContainEqual(
      expect.objectContaining({
        msg: 'api request',
        token: 'site-east',
        method: 'GET',
        path: '/api/v1/files',
        status: 200,
        remote: '127.0.0.1',
      }),
    );
    for (const secret of [TOKENS.read, ROTATED]) expect(p.output()).not.toContain(secret);
  });

  it('429s a peer after --auth-failure-limit failed tokens while another address with a valid token goes on', async () => {
    const p = await serve('limit-store', ['--host', '0.0.0.0', '--tokens', LIST, '--auth-failure-limit', '3']);
    const { local, external } = urls(p);
    const get = (base: string, token: string) => fetch(`${base}/api/v1/files`, { headers: bearer(token) });
    for (let i = 0; i < 3; i++) expect((await get(local, `pxc_guess-${i}`)).status).toBe(401);
    const limited = await get(local, 'pxc_guess-3');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await get(local, TOKENS.read)).status).toBe(429);
    expect((await get(external, TOKENS.read)).status).toBe(200);
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
