/**
 * `POST /api/v1/rollback` and `POST /api/v1/unpin` (issue 11 item 3) through the shared app, with bearer tokens: admin
 * scope only, 400/404/409 JSON naming the field or the name and changing nothing, and the statuses they answer while
 * a real upstream respins behind the pin.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileStatus } from '../../src/core/records.js';
import { bytesOf, fetchBootFile, overHttp, sha256 } from '../helpers/api.js';
import { createHarness, TRANSPORTS, type Harness } from '../helpers/app-harness.js';
import { startServeProcess, type ServeProcess } from '../helpers/serve-process.js';
import { scopedTokens } from '../helpers/tokens.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

const { tokens: TOKENS, auth: withTokens } = await scopedTokens('lifecycle');
const KERNEL = '/os/images/pxeboot/vmlinuz';
const NAME = 'boot/t-vmlinuz';
const version = (bytes: Buffer) => sha256(bytes).slice(0, 16);

interface Moved {
  readonly target: string;
  readonly files: readonly { name: string; outcome: string; from: string; status: FileStatus }[];
}

describe.each(TRANSPORTS)('rollback and unpin over the native API via %s', (transport) => {
  let h: Harness;
  let up: Upstream;
  const [v1, v2, v3] = ['v1', 'v2', 'v3'].map((s) => bytesOf(`api-${s}`, 100_000)) as [Buffer, Buffer, Buffer];

  beforeAll(async () => {
    up = await createUpstream();
    const auth = withTokens();
    h = await createHarness({ transport, auth });
  });
  afterAll(async () => {
    await h.close();
    await up.close();
  });

  const post = (path: string, body: unknown, token: string = TOKENS.admin) =>
    h.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
  const fetchKernel = async () => {
    const res = await post('/api/v1/fetch?wait=20', { prefix: 'boot/t', path: up.url(KERNEL) });
    expect(res.status).toBe(200);
    return (await res.json()) as FileStatus;
  };
  const error = async (res: Response) =>
    ((await res.json()) as { error: { code: string; message: string; field?: string } }).error;
  const generation = async () => {
    const res = await h.request(`/api/v1/files/${NAME}`, { headers: { authorization: `Bearer ${TOKENS.read}` } });
    return ((await res.json()) as FileStatus).generation;
  };

  it('needs the admin scope', async () => {
    up.set(KERNEL, v1);
    await fetchKernel();
    up.set(KERNEL, v2);
    expect(await fetchKernel()).toMatchObject({ version: version(v2), generation: 2 });
    for (const path of ['/api/v1/rollback', '/api/v1/unpin']) {
      for (const token of [TOKENS.read, TOKENS.fetch]) {
        const res = await post(path, { target: NAME }, token);
        expect(res.status).toBe(403);
        expect((await error(res)).message).toContain('lacks scope "admin"');
      }
      const anonymous = await h.request(path, { method: 'POST', body: JSON.stringify({ target: NAME }) });
      expect(anonymous.status).toBe(401);
    }
    expect(await generation()).toBe(2);
  });

  it('refuses bad input with 400/404/409 naming the field or the name, changing nothing', async () => {
    const missing = await post('/api/v1/rollback', {});
    expect(missing.status).toBe(400);
    expect(await error(missing)).toMatchObject({ code: 'invalid-input', field: 'target' });
    const unknown = await post('/api/v1/unpin', { target: 'boot/nope' });
    expect(unknown.status).toBe(404);
    expect((await error(unknown)).message).toContain('"boot/nope"');
    const badTo = await post('/api/v1/rollback', { target: NAME, to: 'feedfeedfeedfeed' });
    expect(badTo.status).toBe(400);
    const err = await error(badTo);
    expect(err.field).toBe('to');
    expect(err.message).toContain(`kept: ${version(v2)}, ${version(v1)}`);
    const notString = await post('/api/v1/rollback', { target: NAME, to: 3 });
    expect(notString.status).toBe(400);
    expect((await error(notString)).field).toBe('to');
    expect(await generation()).toBe(2);
  });

  it('rolls back and pins, holds the next respin, and publishes it on unpin', async () => {
    const res = await post('/api/v1/rollback', { target: NAME });
    expect(res.status).toBe(200);
    const moved = (await res.json()) as Moved;
    expect(moved.files).toHaveLength(1);
    expect(moved.files[0]).toMatchObject({ name: NAME, outcome: 'pinned', from: version(v2) });
    expect(moved.files[0]?.status).toMatchObject({ version: version(v1), generation: 3, held: null });
    expect(moved.files[0]?.status.pinned).toMatchObject({ version: version(v1), reason: 'rollback' });

    const further = await post('/api/v1/rollback', { target: NAME });
    expect(further.status).toBe(409);
    expect((await error(further)).message).toContain(`${NAME} has no kept version older`);

    up.set(KERNEL, v3);
    const held = await fetchKernel();
    expect(held).toMatchObject({ state: 'ready', version: version(v1), generation: 3 });
    expect(held.held).toMatchObject({ version: version(v3) });
    const metrics = await (await h.request('/metrics')).text();
    expect(metrics).toContain('pxecache_fetches_total{result="held"} 1');

    const unpinned = (await (await post('/api/v1/unpin', { target: 'boot/t' })).json()) as Moved;
    expect(unpinned.files[0]).toMatchObject({ outcome: 'published-held', from: version(v1) });
    expect(unpinned.files[0]?.status).toMatchObject({ version: version(v3), generation: 4, pinned: null });
    const again = (await (await post('/api/v1/unpin', { target: NAME })).json()) as Moved;
    expect(again.files[0]).toMatchObject({ outcome: 'not-pinned', from: version(v3) });
    expect(await generation()).toBe(4);
  });
});

describe('rollback over HTTP with a serve process, Foreman revalidating and an agent reading over HTTP', () => {
  let dir: string;
  let up: Upstream;
  let serve: ServeProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pxecache-rollback-http-'));
    up = await createUpstream();
    serve = await startServeProcess(join(dir, 'store'));
  });
  afterAll(async () => {
    await serve.stop();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  });

  const root = () => join(dir, 'tftpboot');
  const agentOnce = () =>
    new Promise<void>((resolve, reject) =>
      execFile(
        process.execPath,
        [CLI, 'agent', '--source', serve.url, '--tftp-root', root(), '--once'],
        { env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 },
        (err, stdout, stderr) => (err ? reject(new Error(stdout + stderr)) : resolve()),
      ),
    );
  const linked = async () => readlink(join(root(), NAME));
  const api = (path: string, body: unknown) =>
    fetch(`${serve.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const status = async () => (await (await fetch(`${serve.url}/api/v1/files/${NAME}`)).json()) as FileStatus;

  it('the agent moves its link back after a rollback, stays while Foreman revalidates, and follows the unpin', async () => {
    const [v1, v2, v3] = ['v1', 'v2', 'v3'].map((s) => bytesOf(`http-${s}`, 100_000)) as [Buffer, Buffer, Buffer];
    for (const bytes of [v1, v2]) {
      up.set(KERNEL, bytes);
      expect((await api('/api/v1/fetch?wait=20', { prefix: 'boot/t', path: up.url(KERNEL) })).status).toBe(200);
    }
    await agentOnce();
    expect(await linked()).toBe(`t-vmlinuz-orig/${version(v2)}/vmlinuz`);

    expect((await api('/api/v1/rollback', { target: 'boot/t' })).status).toBe(200);
    await agentOnce();
    expect(await linked()).toBe(`t-vmlinuz-orig/${version(v1)}/vmlinuz`);

    up.set(KERNEL, v3);
    const foreman = await fetchBootFile(overHttp(serve.url), { prefix: 'boot/t', path: up.url(KERNEL) });
    expect(foreman.status).toBe(200);
    const held = await waitFor(
      'v3 held',
      async () => {
        const got = await status();
        return { done: got.state === 'ready' && got.held !== null, value: got };
      },
      { timeoutMs: 20_000 },
    );
    expect(held).toMatchObject({ version: version(v1), generation: 3, held: { version: version(v3) } });
    await agentOnce();
    expect(await linked()).toBe(`t-vmlinuz-orig/${version(v1)}/vmlinuz`);

    expect((await api('/api/v1/unpin', { target: NAME })).status).toBe(200);
    await agentOnce();
    expect(await linked()).toBe(`t-vmlinuz-orig/${version(v3)}/vmlinuz`);
    expect(up.downloads(KERNEL)).toBe(3);
  }, 60_000);
});
