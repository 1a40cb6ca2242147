/**
 * Air-gapped seeding from the built CLI (docs/air-gap.md), on the file store and on the real S3 engine (Ceph RGW):
 * media imported as if fetched give the same versions as a real fetch, an agent syncs a TFTP root from them, a later
 * real revalidation publishes nothing new, and a bundle exported from one store restores another (upstream's
 * validators included); a damaged bundle publishes nothing.
 */
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishedNames } from '../../src/core/catalog.js';
import { latestPointer } from '../../src/core/pointers.js';
import { systemClock } from '../../src/core/ports.js';
import { readStatus } from '../../src/core/status.js';
import { versionOf, type FileStatus } from '../../src/core/records.js';
import { createFileStore } from '../../src/storage/file-store.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { createS3Store } from '../../src/storage/s3-store.js';
import { sha256 } from '../helpers/agent-fixtures.js';
import { runCli } from '../helpers/cli.js';
import { createTestBucket, rgwClient, rgwEnv } from '../helpers/rgw.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';

const PREFIX = 'boot/centos-9-AbCdEf123456';
const KERNEL = `${PREFIX}-vmlinuz`;
const INITRD = `${PREFIX}-initrd.img`;
const kernel = randomBytes(2 * 1024 * 1024);
const initrd = randomBytes(300_000);

/** `name version sha256 outcome` lines as a map name -> the rest. */
const report = (stdout: string) =>
  new Map(
    stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([name, ...rest]) => [name, rest.join(' ')]),
  );

async function keysUnder(store: ObjectStore, prefix: string): Promise<readonly string[]> {
  return (await store.list(prefix)).keys;
}

describe.each(['file', 's3'] as const)('pxecache import / export on the %s store', (kind) => {
  let dir: string;
  let media: string;
  let upstream: Upstream;
  let storeUrl: string;
  let store: ObjectStore;
  /** A fresh store of this kind for the damaged-bundle cases. */
  let scratch: { url: string; store: ObjectStore };
  let env: Record<string, string> = {};
  let client: S3Client | undefined;
  let cleanupBucket = async () => {};
  const cli = (args: string[]) => runCli(args, env, 60_000);
  const url = (file: string) => upstream.url(`/images/pxeboot/${file}`);
  const statusIn = async (s: ObjectStore, name: string) => (await readStatus(s, systemClock, name)) as FileStatus;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `pxecache-import-${kind}-`));
    media = join(dir, 'media');
    await mkdir(join(media, 'isolinux'), { recursive: true });
    await writeFile(join(media, 'vmlinuz'), kernel);
    await writeFile(join(media, 'initrd.img'), initrd);
    await symlink('vmlinuz', join(media, 'vmlinuz-latest'));
    await writeFile(join(media, '.discinfo'), 'not a boot file\n');
    upstream = await createUpstream();
    upstream.set('/images/pxeboot/vmlinuz', kernel);
    upstream.set('/images/pxeboot/initrd.img', initrd);
    if (kind === 's3') {
      client = rgwClient();
      const bucket = await createTestBucket(client);
      cleanupBucket = bucket.cleanup;
      env = { ...rgwEnv() };
      store = createS3Store({ bucket: bucket.bucket, prefix: 'seeded/', client });
      storeUrl = `s3://${bucket.bucket}/seeded`;
      scratch = {
        url: `s3://${bucket.bucket}/scratch`,
        store: createS3Store({ bucket: bucket.bucket, prefix: 'scratch/', client }),
      };
    } else {
      store = createFileStore({ root: join(dir, 'seeded') });
      storeUrl = `file:${join(dir, 'seeded')}`;
      scratch = { url: `file:${join(dir, 'scratch')}`, store: createFileStore({ root: join(dir, 'scratch') }) };
    }
  });
  afterAll(async () => {
    await upstream.close();
    await cleanupBucket();
    client?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('imports a file, then its directory: same bytes unchanged, the others imported, links skipped', async () => {
    const one = await cli([
      'import',
      join(media, 'vmlinuz'),
      '--store',
      storeUrl,
      '--prefix',
      PREFIX,
      '--as-url',
      url('vmlinuz'),
    ]);
    expect(one.stderr).toContain(`${KERNEL}: done, 2.0 MiB in`);
    expect(one.code).toBe(0);
    expect(report(one.stdout).get(KERNEL)).toBe(`${versionOf(sha256(kernel))} ${sha256(kernel)} imported`);

    const all = await cli(['import', media, '--store', storeUrl, '--prefix', PREFIX, '--as-url', url('')]);
    expect(all.code).toBe(0);
    expect(report(all.stdout)).toEqual(
      new Map([
        [INITRD, `${versionOf(sha256(initrd))} ${sha256(initrd)} imported`],
        [KERNEL, `${versionOf(sha256(kernel))} ${sha256(kernel)} unchanged`],
      ]),
    );
    expect(all.stderr).toContain(`skipped ${join(media, 'vmlinuz-latest')}: a symbolic link`);
    expect(all.stderr).toContain(`skipped ${join(media, 'isolinux')}: not a regular file`);
    expect(all.stderr).toContain(`skipped ${join(media, '.discinfo')}: a hidden file (not a boot file)`);
    expect((await statusIn(store, KERNEL)).generation).toBe(1);
    expect(upstream.requests).toHaveLength(0);
  });

  it('gives the status a real fetch of the same bytes gives, with no validators of its own', async () => {
    const fetched = createFileStore({ root: join(dir, 'fetched') });
    for (const [name, file] of [
      [KERNEL, 'vmlinuz'],
      [INITRD, 'initrd.img'],
    ] as const) {
      const run = await cli([
        'fetch',
        '--store',
        `file:${join(dir, 'fetched')}`,
        '--prefix',
        PREFIX,
        '--url',
        url(file),
      ]);
      expect(run.code).toBe(0);
      const [imported, real] = [await statusIn(store, name), await statusIn(fetched, name)];
      expect(imported).toMatchObject({ state: 'ready', error: null, url: url(file), generation: 1 });
      for (const field of ['name', 'url', 'state', 'version', 'sha256', 'size'] as const)
        expect(imported[field]).toEqual(real[field]);
      // A copy's mtime is no Last-Modified of upstream's (docs/air-gap.md): the pointer carries no validators.
      expect(await latestPointer(store, name)).toMatchObject({ etag: null, lastModified: null });
    }
  });

  it('is what an agent reading the store syncs into a TFTP root', async () => {
    const root = join(dir, 'tftp');
    const run = await cli(['agent', '--once', '--source', storeUrl, '--tftp-root', root]);
    expect(run.stdout).toContain('in sync: 2 names');
    expect(run.code).toBe(0);
    const version = versionOf(sha256(kernel));
    expect(await readlink(join(root, KERNEL))).toBe(`centos-9-AbCdEf123456-vmlinuz-orig/${version}/vmlinuz`);
    expect((await readFile(join(root, KERNEL))).equals(kernel)).toBe(true);
    expect((await readFile(join(root, INITRD))).equals(initrd)).toBe(true);
  });

  it('publishes nothing new when a later real revalidation finds the same bytes upstream', async () => {
    const before = upstream.count('/images/pxeboot/vmlinuz');
    const run = await cli(['fetch', '--store', storeUrl, '--prefix', PREFIX, '--url', url('vmlinuz')]);
    expect(run.code).toBe(0);
    const first = upstream.requests.filter((r) => r.path === '/images/pxeboot/vmlinuz')[before];
    // Unconditional: no validator from the import could make upstream answer 304 for other bytes.
    expect(first?.headers['if-none-match']).toBeUndefined();
    expect(first?.headers['if-modified-since']).toBeUndefined();
    expect(JSON.parse(run.stdout)).toMatchObject({ state: 'ready', generation: 1, sha256: sha256(kernel) });
    expect((await latestPointer(store, KERNEL))?.generation).toBe(1);
  });

  it(`exports a bundle that restores a file store with the same names, versions and validators`, async () => {
    const bundle = join(dir, 'seed.tar');
    const out = await cli(['export', '--store', storeUrl, '--out', bundle]);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(`${bundle}: 2 names, 2 blobs`);
    const listed = (await promisify(execFile)('tar', ['tf', bundle])).stdout.trim().split('\n');
    expect(listed).toEqual(['pxecache-bundle.json', `blobs/${sha256(initrd)}`, `blobs/${sha256(kernel)}`]);

    const restoredUrl = `file:${join(dir, 'restored')}`;
    const restored = createFileStore({ root: join(dir, 'restored') });
    const run = await cli(['import', bundle, '--store', restoredUrl]);
    expect(run.code).toBe(0);
    expect(report(run.stdout).get(KERNEL)).toBe(`${versionOf(sha256(kernel))} ${sha256(kernel)} imported`);
    for (const name of [KERNEL, INITRD]) {
      const [from, to] = [await latestPointer(store, name), await latestPointer(restored, name)];
      for (const field of ['version', 'sha256', 'size', 'url', 'fetchedAt', 'basename'] as const)
        expect(to?.[field]).toEqual(from?.[field]);
    }
    // The revalidation above recorded upstream's validators for the kernel: the bundle carried them over.
    expect((await latestPointer(restored, KERNEL))?.etag).toMatch(/^"[0-9a-f]{32}"$/);
    const again = await cli(['import', bundle, '--store', restoredUrl]);
    expect([...report(again.stdout).values()].every((v) => v.endsWith(' unchanged'))).toBe(true);

    // So the restored site's first revalidation is conditional: a 304, no download.
    const downloads = upstream.downloads('/images/pxeboot/vmlinuz');
    const notModified = upstream.notModified('/images/pxeboot/vmlinuz');
    const check = await cli(['fetch', '--store', restoredUrl, '--prefix', PREFIX, '--url', url('vmlinuz')]);
    expect(JSON.parse(check.stdout)).toMatchObject({ state: 'ready', generation: 1 });
    expect(upstream.downloads('/images/pxeboot/vmlinuz')).toBe(downloads);
    expect(upstream.notModified('/images/pxeboot/vmlinuz')).toBe(notModified + 1);
  });

  it.each([
    [
      'a flipped byte',
      (b: Buffer) => b.writeUInt8(b.readUInt8(b.length - 5120) ^ 0xff, b.length - 5120),
      /blobs\/[0-9a-f]{64}: expected sha256/,
    ],
    ['a truncated copy', null, /entry blobs\/[0-9a-f]{64} is cut short: \d+ of 2097152 bytes/],
  ] as const)('refuses a bundle with %s, naming the entry, and publishes nothing', async (_, damage, message) => {
    const good = await readFile(join(dir, 'seed.tar'));
    const bad = damage ? Buffer.from(good) : good.subarray(0, good.length - 1024 - 100_000);
    damage?.(bad);
    await writeFile(join(dir, 'bad.tar'), bad);
    const run = await cli(['import', join(dir, 'bad.tar'), '--store', scratch.url]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).toContain(sha256(kernel));
    expect(await publishedNames(scratch.store)).toEqual([]);
    expect(await keysUnder(scratch.store, 'data/')).toEqual([]);
  });

  it('records media imported into a pinned name as held, published only by unpin', async () => {
    const name = 'boot/pinned-vmlinuz';
    const bytesOf = async (label: string) => {
      const file = join(dir, `pinned-${label}`);
      await writeFile(file, `${label} of a pinned kernel\n`);
      return file;
    };
    const seed = (file: string) =>
      cli(['import', file, '--store', storeUrl, '--prefix', 'boot/pinned', '--as-url', url('vmlinuz')]);
    const [v1, v2, v3] = [await bytesOf('v1'), await bytesOf('v2'), await bytesOf('v3')];
    expect(report((await seed(v1)).stdout).get(name)).toMatch(/ imported$/);
    expect(report((await seed(v2)).stdout).get(name)).toMatch(/ imported$/);
    expect((await cli(['rollback', name, '--store', storeUrl])).code).toBe(0);
    const pinned = await statusIn(store, name);
    expect(pinned.version).toBe(versionOf(sha256(await readFile(v1))));

    const held = await seed(v3);
    expect({ code: held.code, line: report(held.stdout).get(name) }).toEqual({
      code: 0,
      line: expect.stringMatching(/ held$/),
    });
    const during = await statusIn(store, name);
    expect({ version: during.version, generation: during.generation, held: during.held?.version }).toEqual({
      version: pinned.version,
      generation: pinned.generation,
      held: versionOf(sha256(await readFile(v3))),
    });

    expect((await cli(['unpin', name, '--store', storeUrl])).code).toBe(0);
    const after = await statusIn(store, name);
    expect({ version: after.version, pinned: after.pinned }).toEqual({ version: during.held?.version, pinned: null });
  });
});

describe('pxecache import: usage errors exit 2 naming the flag and change nothing', () => {
  let dir: string;
  const storeDir = () => join(dir, 'store');
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pxecache-import-usage-'));
    await mkdir(join(dir, 'media'));
    await writeFile(join(dir, 'media', 'vmlinuz'), 'k');
    await writeFile(join(dir, 'media', 'bad name'), 'x');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it.each([
    [['media/vmlinuz', '--prefix', 'boot/x'], '--as-url: is required'],
    [['media/vmlinuz', '--as-url', 'http://m/vmlinuz'], '--prefix: is required'],
    [['missing', '--prefix', 'boot/x', '--as-url', 'http://m/vmlinuz'], 'source: '],
    [['media', '--prefix', 'boot/x', '--as-url', 'http://m/pxeboot/'], 'source file "bad name": '],
    [['media', '--prefix', 'boot/x', '--as-url', 'http://m/pxeboot'], '--as-url: "http://m/pxeboot" must end in "/"'],
    [['media/vmlinuz', '--prefix', '../x', '--as-url', 'http://m/vmlinuz'], '--prefix: '],
    [['media/vmlinuz', '--prefix', 'boot/x', '--as-url', 'gopher://m/vmlinuz'], '--as-url: scheme "gopher"'],
    [['media/vmlinuz', '--prefix', 'boot/x', '--as-url', 'http://m/'], '--as-url: '],
    [['media/vmlinuz', '--prefix', 'boot/x', '--as-url', 'http://m/v', '--bogus'], '--bogus: unknown option'],
  ])('import %j', async (args, message) => {
    const [source, ...flags] = args;
    const run = await runCli(['import', join(dir, source ?? ''), ...flags, '--store', `file:${storeDir()}`]);
    expect(run.stderr).toContain(message);
    expect(run.code).toBe(2);
    expect(await publishedNames(createFileStore({ root: storeDir() }))).toEqual([]);
  });

  it('refuses --prefix and --as-url with a bundle, which carries its own names', async () => {
    const store = `file:${join(dir, 'src')}`;
    expect(
      (
        await runCli([
          'import',
          join(dir, 'media', 'vmlinuz'),
          '--store',
          store,
          '--prefix',
          'b/x',
          '--as-url',
          'http://m/v',
        ])
      ).code,
    ).toBe(0);
    expect((await runCli(['export', '--store', store, '--out', join(dir, 'b.tar')])).code).toBe(0);
    const run = await runCli(['import', join(dir, 'b.tar'), '--store', `file:${storeDir()}`, '--prefix', 'boot/y']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--prefix: not taken with a bundle');
    const unknown = await runCli(['export', '--store', store, '--out', join(dir, 'c.tar'), 'b/x-v', 'b/nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('names: not published in');
  });
});
