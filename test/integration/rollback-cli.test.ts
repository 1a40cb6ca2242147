/**
 * Issue 11 item 3, from the built CLI on the file store and on S3 (the Ceph RGW of the test run): a bad respin undone
 * with `pxecache rollback`, the pin holding upstream's next respin back (stored once, then revalidated with 304s)
 * until `pxecache unpin`, and a real `pxecache agent --once` moving its link each time.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestPointer } from '../../src/core/pointers.js';
import type { FileStatus } from '../../src/core/records.js';
import { openStore } from '../../src/storage/store-url.js';
import { bytesOf, sha256 } from '../helpers/api.js';
import { createTestBucket, rgwClient, rgwEnv } from '../helpers/rgw.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const KERNEL = '/os/images/pxeboot/vmlinuz';
const INITRD = '/os/images/pxeboot/initrd.img';
const version = (bytes: Buffer) => sha256(bytes).slice(0, 16);

interface StoreCase {
  readonly label: string;
  setup(dir: string): Promise<{ url: string; env: Record<string, string>; cleanup: () => Promise<void> }>;
}

const CASES: readonly StoreCase[] = [
  {
    label: 'file store',
    setup: async (dir) => ({ url: `file:${join(dir, 'store')}`, env: {}, cleanup: async () => {} }),
  },
  {
    label: 'S3 store (Ceph RGW)',
    setup: async () => {
      const { bucket, cleanup } = await createTestBucket(rgwClient());
      const e = rgwEnv();
      const env = {
        AWS_ENDPOINT_URL_S3: e.AWS_ENDPOINT_URL_S3,
        AWS_REGION: e.AWS_REGION,
        AWS_ACCESS_KEY_ID: e.AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY: e.AWS_SECRET_ACCESS_KEY,
      };
      return { url: `s3://${bucket}/site`, env, cleanup };
    },
  },
];

describe.each(CASES)('rollback and unpin from the CLI ($label)', (storeCase) => {
  let dir: string;
  let up: Upstream;
  let store: { url: string; env: Record<string, string>; cleanup: () => Promise<void> };
  let root: string;

  const cli = (args: readonly string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [CLI, ...args],
        { env: { PATH: process.env.PATH ?? '', ...store.env }, timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
  const fetchFile = async (path: string): Promise<FileStatus> => {
    const run = await cli(['fetch', '--store', store.url, '--prefix', 'boot/t', '--url', up.url(path)]);
    expect(run.code, run.stderr).toBe(0);
    return JSON.parse(run.stdout) as FileStatus;
  };
  const agentOnce = async () => {
    const run = await cli(['agent', '--source', store.url, '--tftp-root', root, '--once']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
  };
  const linked = (name: string) => readlink(join(root, 'boot', name));
  const generationOf = async (name: string) => {
    const { store: opened } = await openStore(store.url, 'store', { probe: false, env: store.env });
    return (await latestPointer(opened, name))?.generation;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pxecache-rollback-'));
    root = join(dir, 'tftpboot');
    up = await createUpstream();
    store = await storeCase.setup(dir);
  });
  afterAll(async () => {
    await up.close();
    await store.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('undoes a respin, holds the next one while pinned, publishes it on unpin; agents follow', async () => {
    const [v1, v2, v3] = ['v1', 'v2', 'v3'].map((s) => bytesOf(`kernel-${s}`, 300_000)) as [Buffer, Buffer, Buffer];
    up.set(KERNEL, v1);
    expect((await fetchFile(KERNEL)).version).toBe(version(v1));
    up.set(KERNEL, v2);
    const respun = await fetchFile(KERNEL);
    expect(respun).toMatchObject({ version: version(v2), generation: 2, pinned: null });
    await agentOnce();
    expect(await linked('t-vmlinuz')).toBe(`t-vmlinuz-orig/${version(v2)}/vmlinuz`);

    const back = await cli(['rollback', 'boot/t-vmlinuz', '--store', store.url]);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toContain(`boot/t-vmlinuz: ${version(v2)} -> ${version(v1)}, generation 3, pinned`);
    await agentOnce();
    expect(await linked('t-vmlinuz')).toBe(`t-vmlinuz-orig/${version(v1)}/vmlinuz`);
    // Upstream still serves v2, which the store has: the revalidation asks about it and gets a 304.
    const pinned = await fetchFile(KERNEL);
    expect(pinned).toMatchObject({ state: 'ready', version: version(v1), generation: 3, held: null });
    expect(pinned.pinned).toMatchObject({ version: version(v1), reason: 'rollback' });
    expect(up.downloads(KERNEL)).toBe(2);

    up.set(KERNEL, v3);
    const holding = await fetchFile(KERNEL);
    expect(holding).toMatchObject({ state: 'ready', version: version(v1), generation: 3 });
    expect(holding.held).toMatchObject({ version: version(v3), sha256: sha256(v3) });
    expect(up.downloads(KERNEL)).toBe(3);
    const notModified = up.notModified(KERNEL);
    const again = await fetchFile(KERNEL);
    expect(again).toMatchObject({ version: version(v1), held: { version: version(v3) } });
    expect(up.downloads(KERNEL)).toBe(3);
    expect(up.notModified(KERNEL)).toBe(notModified + 1);
    await agentOnce();
    expect(await linked('t-vmlinuz')).toBe(`t-vmlinuz-orig/${version(v1)}/vmlinuz`);

    const release = await cli(['unpin', 'boot/t-vmlinuz', '--store', store.url]);
    expect(release.code, release.stderr).toBe(0);
    expect(release.stdout).toContain(`boot/t-vmlinuz: ${version(v1)} -> ${version(v3)}, generation 4, unpinned`);
    await agentOnce();
    expect(await linked('t-vmlinuz')).toBe(`t-vmlinuz-orig/${version(v3)}/vmlinuz`);
    const after = await fetchFile(KERNEL);
    expect(after).toMatchObject({ version: version(v3), generation: 4, pinned: null, held: null });
    expect(after.versions.map((v) => v.version)).toEqual([v3, v2, v1].map(version));
    expect(up.downloads(KERNEL)).toBe(3);

    const twice = await cli(['unpin', 'boot/t-vmlinuz', '--store', store.url]);
    expect(twice.code).toBe(0);
    expect(twice.stdout).toContain('not pinned: nothing changed');
    expect(await generationOf('boot/t-vmlinuz')).toBe(4);
  }, 180_000);

  it('rolls back a prefix (kernel and initrd) together; refuses a bad --to and an unknown target, changing nothing', async () => {
    const [i1, i2] = ['i1', 'i2'].map((s) => bytesOf(`initrd-${s}`, 200_000)) as [Buffer, Buffer];
    up.set(INITRD, i1);
    await fetchFile(INITRD);
    up.set(INITRD, i2);
    await fetchFile(INITRD);
    await agentOnce();
    const kernelBefore = await linked('t-vmlinuz');

    const unknownTo = await cli(['rollback', 'boot/t-vmlinuz', '--store', store.url, '--to', 'feedfeedfeedfeed']);
    expect(unknownTo.code).toBe(2);
    expect(unknownTo.stderr).toContain('--to: "feedfeedfeedfeed" is not a kept version of boot/t-vmlinuz');
    const toWithPrefix = await cli(['rollback', 'boot/t', '--store', store.url, '--to', version(i1)]);
    expect(toWithPrefix.code).toBe(2);
    expect(toWithPrefix.stderr).toContain('--to: needs a single name');
    const unknown = await cli(['rollback', 'boot/nope', '--store', store.url]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('"boot/nope"');
    expect(await generationOf('boot/t-vmlinuz')).toBe(4);
    expect(await generationOf('boot/t-initrd.img')).toBe(2);

    const both = await cli(['rollback', 'boot/t', '--store', store.url]);
    expect(both.code, both.stderr).toBe(0);
    const lines = both.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain(`boot/t-initrd.img: ${version(i2)} -> ${version(i1)}, generation 3, pinned`);
    expect(lines[1]).toMatch(/^boot\/t-vmlinuz: \w{16} -> \w{16}, generation 5, pinned/);
    await agentOnce();
    expect(await linked('t-initrd.img')).toBe(`t-initrd.img-orig/${version(i1)}/initrd.img`);
    expect(await linked('t-vmlinuz')).not.toBe(kernelBefore);
  }, 180_000);
});
