/**
 * The fetcher as a Cloudflare Worker (issue 5 acceptance), in real workerd from the top-level wrangler.toml: Foreman's
 * `POST /tftp/fetch_boot_file` against a real upstream on loopback starts a Workflow that streams into the R2
 * binding; the status turns `ready`; the stored bytes and their sha256 match upstream, also for a 300 MiB body sent
 * without Content-Length (R2 multipart, parts of one size); and a real agent process syncs a TFTP root from the
 * Worker over HTTP.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileStatus } from '../../src/core/records.js';
import { bytesOf, fetchBootFile, sha256 } from '../helpers/api.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { openPersistedBucket, startTestWorker, type TestWorker } from '../helpers/worker.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const MiB = 1024 * 1024;

let upstream: Upstream;
let worker: TestWorker;
let bigInitrd: Buffer;
beforeAll(async () => {
  upstream = await createUpstream();
  worker = await startTestWorker({ PXECACHE_AUTH_FAILURE_LIMIT: '4' });
}, 60_000);
afterAll(async () => {
  await worker?.dispose();
  await upstream?.close();
});

const admin = () => ({ authorization: `Bearer ${worker.tokens.admin}` });

async function status(name: string): Promise<FileStatus> {
  const res = await worker.request(`/api/v1/files/${name}`, { headers: admin() });
  expect(res.status).toBe(200);
  return (await res.json()) as FileStatus;
}

/**
 * The status while a Workflow streams into local R2. Local R2 (miniflare) holds a read that arrives during a long
 * streamed write until its client gives up, even after the write ends (seen here with wrangler 4.86.0, for single
 * puts and multipart alike): such a poll is abandoned after 10 s and asked again.
 */
async function pollStatus(name: string): Promise<FileStatus | null> {
  try {
    const res = await worker.request(`/api/v1/files/${name}`, {
      headers: admin(),
      signal: AbortSignal.timeout(10_000),
    });
    return res.status === 200 ? ((await res.json()) as FileStatus) : null;
  } catch (err) {
    if ((err as Error).name === 'TimeoutError') return null;
    throw err;
  }
}

async function until(name: string, state: string, timeoutMs = 20_000): Promise<FileStatus | null> {
  return waitFor(
    `${name} ${state}`,
    async () => {
      const s = await pollStatus(name);
      return { done: s?.state === state || s?.state === 'failed', value: s };
    },
    { timeoutMs, intervalMs: 100 },
  );
}

async function blob(sha: string): Promise<Buffer> {
  const res = await worker.request(`/api/v1/blobs/${sha}`, { headers: admin() });
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe('pxecache on Cloudflare Workers (workerd, R2, Workflows)', () => {
  it('fetch_boot_file answers 200 empty with the job recorded, and the Workflow publishes the exact bytes', async () => {
    const kernel = bytesOf('workers-kernel', 3 * MiB + 17);
    upstream.set('/centos/images/pxeboot/vmlinuz', kernel);
    const path = upstream.url('/centos/images/pxeboot/vmlinuz');
    const res = await fetchBootFile(worker.request, { prefix: 'boot/centos-9-AbCd', path });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
    // Recorded before the 200 was sent (DESIGN.md), whatever the Workflow has done by now.
    expect(['fetching', 'ready']).toContain((await status('boot/centos-9-AbCd-vmlinuz')).state);

    const ready = await until('boot/centos-9-AbCd-vmlinuz', 'ready');
    expect(ready).toMatchObject({ state: 'ready', sha256: sha256(kernel), size: kernel.byteLength, generation: 1 });
    expect(sha256(await blob(sha256(kernel)))).toBe(sha256(kernel));
    expect(upstream.downloads('/centos/images/pxeboot/vmlinuz')).toBe(1);

    // Every call revalidates (as smart-proxy does): unchanged upstream, a 304, nothing new.
    const again = await fetchBootFile(worker.request, { prefix: 'boot/centos-9-AbCd', path });
    expect(again.status).toBe(200);
    await waitFor('the revalidation', async () => {
      const n = upstream.notModified('/centos/images/pxeboot/vmlinuz');
      return { done: n >= 1, value: n };
    });
    expect((await until('boot/centos-9-AbCd-vmlinuz', 'ready'))?.generation).toBe(1);
    expect(upstream.downloads('/centos/images/pxeboot/vmlinuz')).toBe(1);
  });

  it('bad input is a 400 naming the field, and ftp:// is refused on this runtime', async () => {
    const missing = await fetchBootFile(worker.request, { path: upstream.url('/x/vmlinuz') });
    expect(missing.status).toBe(400);
    expect(await missing.text()).toMatch(/prefix/);
    const ftp = await fetchBootFile(worker.request, { prefix: 'boot/ftp', path: 'ftp://127.0.0.1/vmlinuz' });
    expect(ftp.status).toBe(400);
    expect(await ftp.text()).toMatch(/path: ftp:\/\/ media are not supported yet on this runtime/);
    const unknown = await worker.request('/api/v1/files/boot/ftp-vmlinuz', { headers: admin() });
    expect(unknown.status).toBe(404);
  });

  it('the native API needs a bearer token on a Worker', async () => {
    const res = await worker.request('/api/v1/files');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('a 300 MiB upstream without Content-Length is stored through multipart with parts of one size', async () => {
    const initrd = (bigInitrd = randomBytes(300 * MiB));
    upstream.set('/big/initrd.img', initrd, { chunked: true });
    const res = await worker.request('/api/v1/fetch?wait=0', {
      method: 'POST',
      headers: { ...admin(), 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'boot/big-initrd.img', url: upstream.url('/big/initrd.img') }),
    });
    expect(res.status).toBe(202);
    const ready = await until('boot/big-initrd.img', 'ready', 240_000);
    expect(ready).toMatchObject({ state: 'ready', sha256: sha256(initrd), size: initrd.byteLength });
    const asked = upstream.requests.filter((r) => r.path === '/big/initrd.img');
    expect(asked.map((r) => r.headers['accept-encoding'])).toEqual(asked.map(() => 'identity'));
    expect(upstream.downloads('/big/initrd.img')).toBe(1);
    expect(sha256(await blob(sha256(initrd)))).toBe(sha256(initrd));
  }, 300_000);

  it('an agent syncs a TFTP root from the Worker over HTTP', async () => {
    const root = await mkdtemp(join(tmpdir(), 'pxecache-worker-root-'));
    try {
      const result = await runAgent(['--source', worker.url, '--tftp-root', root, '--once'], {
        PXECACHE_TOKEN: worker.tokens.read,
      });
      expect(result.code, result.output).toBe(0);
      const name = 'boot/centos-9-AbCd-vmlinuz';
      const s = await status(name);
      expect(await readlink(join(root, name))).toBe(`centos-9-AbCd-vmlinuz-orig/${s.version}/vmlinuz`);
      expect(sha256(await readFile(join(root, name)))).toBe(s.sha256);
    } finally {
      await rm(root, { recursive: true, force: true });
      await rm(`${root}.state`, { recursive: true, force: true });
    }
  }, 120_000);

  // Last in this block: from here on 127.0.0.1 is refused. Regression: the limiter lived in one request's app.
  it('answers 429 once an address has used up its failed token attempts, across requests', async () => {
    const wrong = { authorization: 'Bearer pxc_not-a-token' };
    // As many failures as the limit, on their own: a failure left by an earlier test may have expired by now (the
    // 300 MiB test alone takes about a minute, the limiter's window), or may not, which turns the last one into a 429.
    for (let i = 0; i < 4; i++)
      expect([401, 429]).toContain((await worker.request('/api/v1/files', { headers: wrong })).status);
    const refused = await worker.request('/api/v1/files', { headers: admin() });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
  });
});

describe('what the Worker left in R2 (read by a separate miniflare)', () => {
  it('holds each version once: a file under one part as one put, 300 MiB as equal 8 MiB parts', async () => {
    await worker.dispose({ keep: true });
    const stored = await openPersistedBucket(worker.persist);
    try {
      const listed = await stored.bucket.list({ prefix: 'data/' });
      const bySize = new Map(listed.objects.map((o) => [o.size, o]));
      expect(listed.objects).toHaveLength(2);
      const kernel = bySize.get(3 * MiB + 17);
      const initrd = bySize.get(300 * MiB);
      // R2's ETag of a multipart object is "<md5 of the part md5s>-<parts>": 300 MiB in 8 MiB parts is 38 of them.
      expect(kernel?.etag).toMatch(/^[0-9a-f]{32}$/);
      expect(initrd?.etag).toMatch(/^[0-9a-f]{32}-38$/);
      const body = await stored.bucket.get(initrd!.key);
      expect(sha256(Buffer.from(await body!.arrayBuffer()))).toBe(sha256(bigInitrd));
    } finally {
      await stored.close();
      await rm(worker.persist, { recursive: true, force: true });
    }
    // Reading 300 MiB back from a persisted local R2 and hashing it: ~25 s on a quiet machine.
  }, 120_000);
});

function runAgent(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'agent', ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('exit', (code) => resolve({ code, output }));
  });
}
