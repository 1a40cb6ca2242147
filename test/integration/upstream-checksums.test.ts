/**
 * Upstream checksum verification (issue 11 item 1, docs/integrity.md) through the real app over HTTP, against a real
 * upstream laid out like the media: a RHEL tree with `.treeinfo` `[checksums]`, a Debian installer with
 * `images/SHA256SUMS`, an old one with only `MD5SUMS`. A mismatch (a mirror caught mid-sync) is never published.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog, FileStatus } from '../../src/core/records.js';
import { listAll, type ObjectStore } from '../../src/storage/object-store.js';
import { createS3Store } from '../../src/storage/s3-store.js';
import { bytesOf, sha256, type Requester } from '../helpers/api.js';
import { createHarness, type Harness } from '../helpers/app-harness.js';
import {
  DEBIAN_IMAGES,
  DEBIAN_KERNEL,
  OLD_IMAGES,
  OLD_KERNEL,
  RHEL,
  RHEL_INITRD,
  RHEL_KERNEL,
  TREEINFO,
  serveRhel,
  sums,
  treeinfo,
} from '../helpers/checksum-media.js';
import { createTestBucket, rgwClient } from '../helpers/rgw.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';

const PREFIX = 'boot/rhel-9-AbCdEfGhIjKl';
const K1 = bytesOf('vmlinuz-1', 20_000);
const K2 = bytesOf('vmlinuz-2', 21_000);
const I1 = bytesOf('initrd-1', 30_000);

async function fetchWait(req: Requester, prefix: string, url: string): Promise<{ code: number; body: FileStatus }> {
  const res = await req('/api/v1/fetch?wait=20', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prefix, path: url }),
  });
  return { code: res.status, body: (await res.json()) as FileStatus };
}

async function catalog(req: Requester): Promise<Catalog['entries']> {
  return ((await (await req('/api/v1/files')).json()) as Catalog).entries;
}

async function dataObjects(store: ObjectStore): Promise<string[]> {
  const out: string[] = [];
  for await (const key of listAll(store, 'data/')) out.push(key);
  return out;
}

/** The respin a mirror sync makes visible half-done: a new kernel while `.treeinfo` still lists the old one. */
async function midSyncIsRefusedThenPublished(up: Upstream, h: Harness): Promise<void> {
  const req = h.request;
  serveRhel(up, K1, I1);
  const first = await fetchWait(req, PREFIX, up.url(RHEL_KERNEL));
  expect(first.body).toMatchObject({ state: 'ready', generation: 1, sha256: sha256(K1) });
  const agentsSaw = await catalog(req);
  const stored = await dataObjects(h.store);

  up.set(RHEL_KERNEL, K2); // the kernel is synced, .treeinfo is not yet
  const refused = await fetchWait(req, PREFIX, up.url(RHEL_KERNEL));
  expect(refused.code).toBe(422);
  expect(refused.body).toMatchObject({ state: 'failed', version: first.body.version, generation: 1 });
  expect(refused.body.error?.code).toBe('integrity');
  expect(refused.body.error?.message).toContain(up.url(TREEINFO));
  expect(refused.body.error?.message).toContain(`expected ${sha256(K1)}, got ${sha256(K2)}`);
  expect(refused.body.verifiedBy).toEqual({ kind: 'treeinfo', url: up.url(TREEINFO), algorithm: 'sha256' });
  expect(await catalog(req)).toEqual(agentsSaw);
  // The refused bytes are not kept.
  expect(await dataObjects(h.store)).toEqual(stored);

  up.set(TREEINFO, treeinfo({ 'images/pxeboot/vmlinuz': K2, 'images/pxeboot/initrd.img': I1 })); // sync done
  const published = await fetchWait(req, PREFIX, up.url(RHEL_KERNEL));
  expect(published.code).toBe(200);
  expect(published.body).toMatchObject({ state: 'ready', generation: 2, sha256: sha256(K2), error: null });
  expect(published.body.verifiedBy).toEqual({ kind: 'treeinfo', url: up.url(TREEINFO), algorithm: 'sha256' });
}

describe('upstream checksums (file store, real HTTP)', () => {
  let up: Upstream;
  let h: Harness;
  const req: Requester = (path, init) => h.request(path, init);

  beforeEach(async () => {
    up = await createUpstream();
    h = await createHarness({ transport: 'socket' });
  });
  afterEach(async () => {
    await up?.close();
    await h?.close();
  });

  it('a kernel and initrd listed in .treeinfo are ready with verifiedBy; the second asks with If-None-Match (304)', async () => {
    serveRhel(up, K1, I1);
    const kernel = await fetchWait(req, PREFIX, up.url(RHEL_KERNEL));
    expect(kernel.code).toBe(200);
    expect(kernel.body).toMatchObject({ state: 'ready', sha256: sha256(K1), generation: 1 });
    expect(kernel.body.verifiedBy).toEqual({ kind: 'treeinfo', url: up.url(TREEINFO), algorithm: 'sha256' });
    const initrd = await fetchWait(req, PREFIX, up.url(RHEL_INITRD));
    expect(initrd.body).toMatchObject({ state: 'ready', sha256: sha256(I1) });
    expect(initrd.body.verifiedBy).toEqual(kernel.body.verifiedBy);
    // .treeinfo was downloaded once, then revalidated against the cached copy, like any upstream file.
    const asked = up.requests.filter((r) => r.path === TREEINFO);
    expect(asked.map((r) => r.status)).toEqual([200, 304]);
    expect(asked[1]?.headers['if-none-match']).toBeTruthy();
    // One document answered: nothing else was asked for.
    expect(up.requests.filter((r) => r.path.endsWith('SUMS'))).toEqual([]);
  });

  it('a mirror caught mid-sync (new kernel, old .treeinfo) fails `integrity`, publishes nothing, then publishes', async () => {
    await midSyncIsRefusedThenPublished(up, h);
  });

  it('the reverse (new .treeinfo, old kernel) refuses a first fetch until the kernel is synced too', async () => {
    up.set(RHEL_KERNEL, K1);
    up.set(TREEINFO, treeinfo({ 'images/pxeboot/vmlinuz': K2 }));
    const refused = await fetchWait(req, PREFIX, up.url(RHEL_KERNEL));
    expect(refused.code).toBe(422);
    expect(refused.body).toMatchObject({ state: 'failed', version: null, generation: 0, error: { code: 'integrity' } });
    expect(await catalog(req)).toEqual([]);
    expect(await dataObjects(h.store)).toEqual([]);
    up.set(RHEL_KERNEL, K2);
    const published = await fetchWait(req, PREFIX, up.url(RHEL_KERNEL));
    expect(published.body).toMatchObject({ state: 'ready', generation: 1, sha256: sha256(K2) });
    expect((await catalog(req)).map((e) => e.sha256)).toEqual([sha256(K2)]);
  });

  it('no checksum document (404 everywhere) or a document that does not list the file: ready, verifiedBy null', async () => {
    up.set('/plain/boot/vmlinuz', K1);
    const absent = await fetchWait(req, 'boot/plain', up.url('/plain/boot/vmlinuz'));
    expect(absent.body).toMatchObject({ state: 'ready', verifiedBy: null, sha256: sha256(K1) });
    expect(up.requests.filter((r) => r.path.endsWith('SUMS')).map((r) => [r.path, r.status])).toEqual([
      ['/plain/boot/SHA256SUMS', 404],
      ['/plain/boot/MD5SUMS', 404],
    ]);

    serveRhel(up, K1, I1, { 'images/pxeboot/initrd.img': I1 });
    const unlisted = await fetchWait(req, PREFIX, up.url(RHEL_KERNEL));
    expect(unlisted.body).toMatchObject({ state: 'ready', verifiedBy: null });
    // At most three documents per download: .treeinfo, then images/SHA256SUMS and images/MD5SUMS.
    const documents = up.requests.filter((r) => r.path.startsWith(RHEL) && r.path !== RHEL_KERNEL);
    expect(documents.map((r) => r.path)).toEqual([TREEINFO, `${RHEL}/images/SHA256SUMS`, `${RHEL}/images/MD5SUMS`]);
  });

  it('a checksum document that cannot be read (503) fails the fetch (upstream-status, 502) and publishes nothing', async () => {
    up.set(RHEL_KERNEL, K1);
    up.set(TREEINFO, 'busy', { status: 503 });
    const failed = await fetchWait(req, PREFIX, up.url(RHEL_KERNEL));
    expect(failed.code).toBe(502);
    expect(failed.body).toMatchObject({ state: 'failed', generation: 0, error: { code: 'upstream-status' } });
    expect(failed.body.error?.message).toContain(up.url(TREEINFO));
    expect(await dataObjects(h.store)).toEqual([]);
  });

  it('Debian: images/SHA256SUMS lists ./netboot/...; a mismatch there is refused too', async () => {
    const linux = bytesOf('debian-linux', 9000);
    up.set(DEBIAN_KERNEL, linux);
    up.set(`${DEBIAN_IMAGES}/SHA256SUMS`, sums('sha256', { 'netboot/debian-installer/amd64/linux': linux }));
    const ok = await fetchWait(req, 'boot/debian', up.url(DEBIAN_KERNEL));
    expect(ok.body).toMatchObject({ state: 'ready', generation: 1 });
    expect(ok.body.verifiedBy).toEqual({
      kind: 'sha256sums',
      url: up.url(`${DEBIAN_IMAGES}/SHA256SUMS`),
      algorithm: 'sha256',
    });
    up.set(DEBIAN_KERNEL, bytesOf('debian-linux-respun', 9000));
    const refused = await fetchWait(req, 'boot/debian', up.url(DEBIAN_KERNEL));
    expect(refused.body).toMatchObject({ state: 'failed', generation: 1, error: { code: 'integrity' } });
  });

  it('an installer with only MD5SUMS is checked by MD5 (the stored bytes read back)', async () => {
    const linux = bytesOf('etch-linux', 7000);
    up.set(OLD_KERNEL, linux);
    up.set(`${OLD_IMAGES}/MD5SUMS`, sums('md5', { 'netboot/debian-installer/i386/linux': linux }));
    const ok = await fetchWait(req, 'boot/etch', up.url(OLD_KERNEL));
    expect(ok.body).toMatchObject({ state: 'ready' });
    expect(ok.body.verifiedBy).toEqual({ kind: 'md5sums', url: up.url(`${OLD_IMAGES}/MD5SUMS`), algorithm: 'md5' });
    up.set(OLD_KERNEL, bytesOf('etch-linux-corrupt', 7000));
    const refused = await fetchWait(req, 'boot/etch', up.url(OLD_KERNEL));
    expect(refused.code).toBe(422);
    expect(refused.body).toMatchObject({ state: 'failed', generation: 1, error: { code: 'integrity' } });
    expect(refused.body.error?.message).toContain('md5');
  });
});

describe('upstream checksums on S3 (Ceph RGW)', () => {
  let client: S3Client;
  let bucket: string;
  let cleanup: () => Promise<void>;
  let up: Upstream;
  let h: Harness;

  beforeAll(async () => {
    client = rgwClient();
    ({ bucket, cleanup } = await createTestBucket(client));
    up = await createUpstream();
    const s3 = createS3Store({ bucket, prefix: 'checksums/', client });
    h = await createHarness({ transport: 'socket', wrapStore: () => s3 });
  });
  afterAll(async () => {
    await h?.close();
    await up?.close();
    await cleanup();
    client.destroy();
  });

  it('a mirror caught mid-sync fails `integrity` and publishes nothing, then publishes once the sync is done', async () => {
    await midSyncIsRefusedThenPublished(up, h);
  });
});
