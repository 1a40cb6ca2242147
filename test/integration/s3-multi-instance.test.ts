/**
 * Issue "S3 object storage", against the Ceph RGW the test run starts: two `serve` processes on one bucket coalesce
 * 100 concurrent fetches into exactly one upstream GET; killing the lease holder mid-fetch lets the other instance
 * take over; and `serve --store s3://` + `agent --source s3:// --once` with read-only credentials publishes into a
 * TFTP root exactly as with the file store.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FileStatus } from '../../src/core/records.js';
import { bytesOf, fetchBootFile, overHttp, sha256 } from '../helpers/api.js';
import { createTestBucket, rgwClient, rgwEnv, grantReader } from '../helpers/rgw.js';
import { startServeProcess, type ServeProcess } from '../helpers/serve-process.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const KERNEL = '/os/images/pxeboot/vmlinuz';

describe('several fetchers on one S3 bucket', () => {
  let up: Upstream;
  let bucket: string;
  let cleanup: () => Promise<void>;
  let dir: string;
  const processes: ServeProcess[] = [];
  const env = () => {
    const e = rgwEnv();
    return {
      AWS_ENDPOINT_URL_S3: e.AWS_ENDPOINT_URL_S3,
      AWS_REGION: e.AWS_REGION,
      AWS_ACCESS_KEY_ID: e.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: e.AWS_SECRET_ACCESS_KEY,
    };
  };
  async function serve(extra: readonly string[] = []) {
    const p = await startServeProcess(`s3://${bucket}/site`, extra, env());
    processes.push(p);
    return p;
  }
  const status = async (p: ServeProcess, name: string) =>
    (await (await fetch(`${p.url}/api/v1/files/${name}`)).json()) as FileStatus;

  beforeEach(async () => {
    up = await createUpstream();
    ({ bucket, cleanup } = await createTestBucket(rgwClient()));
    dir = await mkdtemp(join(tmpdir(), 'pxecache-s3-it-'));
  });
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((p) => p.stop()));
    await up.close();
    await cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('coalesces 100 concurrent calls split across two instances into exactly one upstream GET', async () => {
    const bytes = bytesOf('s3-shared', 2_000_000);
    up.set(KERNEL, bytes, { delayMs: 800 });
    const one = await serve();
    const two = await serve();
    const responses = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        fetchBootFile(overHttp((i % 2 ? two : one).url), { prefix: 'boot/t', path: up.url(KERNEL) }),
      ),
    );
    expect(await Promise.all(responses.map(async (r) => `${r.status} ${await r.text()}`))).toEqual(
      Array.from({ length: 100 }, () => '200 '),
    );
    for (const p of [one, two]) {
      const s = await waitFor(
        'ready on both instances',
        async () => {
          const got = await status(p, 'boot/t-vmlinuz');
          return { done: got.state === 'ready', value: got };
        },
        { timeoutMs: 20_000 },
      );
      expect(s.sha256).toBe(sha256(bytes));
      expect(s.generation).toBe(1);
    }
    expect(up.downloads(KERNEL)).toBe(1);
  });

  it('lets the other instance take over when the lease holder is killed mid-fetch', async () => {
    const bytes = bytesOf('s3-takeover', 1_000_000);
    // The first GET trickles for a long time: its holder is killed in the middle of it.
    up.set(KERNEL, bytes, { chunkDelayMs: 200 });
    const holder = await serve(['--lease-ttl', '2']);
    const other = await serve(['--lease-ttl', '2']);
    expect((await fetchBootFile(overHttp(holder.url), { prefix: 'boot/t', path: up.url(KERNEL) })).status).toBe(200);
    await waitFor('the holder started downloading', async () => ({
      done: up.count(KERNEL) === 1,
      value: up.count(KERNEL),
    }));
    expect((await fetchBootFile(overHttp(other.url), { prefix: 'boot/t', path: up.url(KERNEL) })).status).toBe(200);
    await holder.kill('SIGKILL');
    up.set(KERNEL, bytes); // the retry is fast
    const s = await waitFor(
      'the other instance published',
      async () => {
        const got = await status(other, 'boot/t-vmlinuz');
        return { done: got.state === 'ready' && got.sha256 !== null, value: got };
      },
      { timeoutMs: 30_000 },
    );
    expect(s.sha256).toBe(sha256(bytes));
    expect(other.logs.some((l) => /taking over/.test(String(l.msg)))).toBe(true);
  });

  it('publishes into a TFTP root through an agent reading the bucket with read-only credentials', async () => {
    const bytes = bytesOf('s3-agent', 700_000);
    up.set(KERNEL, bytes);
    const fetcher = await serve();
    expect((await fetchBootFile(overHttp(fetcher.url), { prefix: 'boot/t', path: up.url(KERNEL) })).status).toBe(200);
    const ready = await waitFor(
      'ready',
      async () => {
        const got = await status(fetcher, 'boot/t-vmlinuz');
        return { done: got.state === 'ready', value: got };
      },
      { timeoutMs: 20_000 },
    );

    // The agent's user may only read the bucket (bucket policy), as docs/s3.md recommends.
    await grantReader(bucket);
    const e = rgwEnv();
    const readerEnv = {
      ...process.env,
      AWS_ENDPOINT_URL_S3: e.AWS_ENDPOINT_URL_S3,
      AWS_REGION: e.AWS_REGION,
      AWS_ACCESS_KEY_ID: e.RGW_READER_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: e.RGW_READER_SECRET_ACCESS_KEY,
    };
    const root = join(dir, 'tftpboot');
    const run = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(
        process.execPath,
        [CLI, 'agent', '--source', `s3://${bucket}/site`, '--tftp-root', root, '--once'],
        { env: readerEnv, timeout: 60_000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      ),
    );
    expect(run.code, run.out).toBe(0);
    expect(await readlink(join(root, 'boot/t-vmlinuz'))).toBe(`t-vmlinuz-orig/${ready.version}/vmlinuz`);
    expect(sha256(await readFile(join(root, 'boot/t-vmlinuz')))).toBe(sha256(bytes));
    // And that user really cannot write.
    await expect(
      rgwClient('reader').send(new PutObjectCommand({ Bucket: bucket, Key: 'site/x', Body: 'x' })),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
  });
});
