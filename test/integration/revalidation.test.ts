/**
 * The 304 path (issue "Performance": revalidation of unchanged files at thousands of requests/s): a ready name whose
 * upstream has not changed is revalidated with one conditional GET and no lease or status write per request; the
 * `checkedAt` times are written in batches. Against a real upstream HTTP server and a real file store.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StatusRecord } from '../../src/core/records.js';
import { keys } from '../../src/core/object-keys.js';
import { getJson, type ObjectStore } from '../../src/storage/object-store.js';
import { bytesOf, fetchBootFile, getStatus, sha256 } from '../helpers/api.js';
import { createHarness, type Harness } from '../helpers/app-harness.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { deferred, waitFor } from '../helpers/wait.js';

const KERNEL = '/os/9/images/pxeboot/vmlinuz';
const NAME = 'boot/r-vmlinuz';

/** The keys of every put through the store, in order. */
function recordingPuts(puts: string[]): (store: ObjectStore) => ObjectStore {
  return (inner) => ({
    ...inner,
    put: async (key, body, options) => {
      puts.push(key);
      return inner.put(key, body, options);
    },
  });
}

describe('revalidation of unchanged files', () => {
  let up: Upstream;
  let h: Harness;
  const puts: string[] = [];
  const req = (path: string, init?: RequestInit) => h.request(path, init);

  beforeEach(async () => {
    puts.length = 0;
    up = await createUpstream();
    h = await createHarness({ transport: 'app.request', wrapStore: recordingPuts(puts) });
    up.set(KERNEL, bytesOf('vmlinuz-1', 8192));
    expect((await fetchBootFile(req, { prefix: 'boot/r', path: up.url(KERNEL) })).status).toBe(200);
    await h.idle();
    expect((await getStatus(req, NAME)).body).toMatchObject({ state: 'ready', generation: 1 });
  });
  afterEach(async () => {
    await up?.close();
    await h?.close();
  });

  const rawStatus = () => getJson<StatusRecord>(h.store, keys.status(NAME));

  it('asks upstream on every call, writes nothing per call, and records checkedAt in one batched write', async () => {
    const published = await rawStatus();
    puts.length = 0;
    const before = up.count(KERNEL);
    // Indexes into every request: the first fetch also asked for the medium's checksum documents (checksum-check.ts).
    const first = up.requests.length;
    for (let round = 0; round < 10; round++) {
      const answers = await Promise.all(
        Array.from({ length: 10 }, () => fetchBootFile(req, { prefix: 'boot/r', path: up.url(KERNEL) })),
      );
      expect(answers.map((a) => a.status)).toEqual(Array<number>(10).fill(200));
      await h.idle();
    }
    // Every round revalidated (concurrent calls of one round share one request), each answered 304.
    expect(up.count(KERNEL) - before).toBeGreaterThanOrEqual(10);
    expect(up.requests.slice(first).every((r) => r.path === KERNEL && r.status === 304)).toBe(true);
    // No lease, no `fetching` record, no status write yet: the 304 path is free of durable writes.
    expect(puts).toEqual([]);
    // The API already shows the new check time; the stored record still has the publication's.
    const shown = (await getStatus(req, NAME)).body as { checkedAt: string; state: string };
    expect(shown.state).toBe('ready');
    expect(Date.parse(shown.checkedAt)).toBeGreaterThan(Date.parse(published!.checkedAt!));
    expect((await rawStatus())?.checkedAt).toBe(published?.checkedAt);
    // The batch: one status write, with that time, over the same record.
    await h.fetcher.flush();
    expect(puts).toEqual([keys.status(NAME)]);
    expect(await rawStatus()).toEqual({ ...published, checkedAt: shown.checkedAt });
  });

  it('shows the name `fetching` while its check is in flight (this process), then ready again', async () => {
    puts.length = 0;
    const gate = deferred();
    up.set(KERNEL, bytesOf('vmlinuz-1', 8192), { gate: gate.promise });
    await fetchBootFile(req, { prefix: 'boot/r', path: up.url(KERNEL) });
    expect((await getStatus(req, NAME)).body).toMatchObject({ state: 'fetching', generation: 1, error: null });
    gate.resolve();
    await h.idle();
    expect((await getStatus(req, NAME)).body).toMatchObject({ state: 'ready', generation: 1 });
    expect(puts.filter((k) => k.startsWith('leases/'))).toEqual([]);
  });

  it('writes the batch by itself within about a second', async () => {
    const published = await rawStatus();
    await fetchBootFile(req, { prefix: 'boot/r', path: up.url(KERNEL) });
    await h.idle();
    const written = await waitFor('the batched checkedAt write', async () => {
      const now = await rawStatus();
      return { done: now?.checkedAt !== published?.checkedAt, value: now };
    });
    expect(Date.parse(written!.checkedAt!)).toBeGreaterThan(Date.parse(published!.checkedAt!));
    expect(written).toMatchObject({ state: 'ready', jobId: published?.jobId });
  });

  it('an upstream failure during the check is recorded as usual: failed with a code, the version still served', async () => {
    up.set(KERNEL, bytesOf('unused', 10), { status: 503 });
    expect((await fetchBootFile(req, { prefix: 'boot/r', path: up.url(KERNEL) })).status).toBe(200);
    await h.idle();
    const status = (await getStatus(req, NAME)).body;
    expect(status).toMatchObject({
      state: 'failed',
      error: { code: 'upstream-status' },
      generation: 1,
      sha256: sha256(bytesOf('vmlinuz-1', 8192)),
    });
    // A later unchanged check takes the full way again (the name is not `ready`) and clears the failure.
    up.set(KERNEL, bytesOf('vmlinuz-1', 8192));
    await fetchBootFile(req, { prefix: 'boot/r', path: up.url(KERNEL) });
    await h.idle();
    expect((await getStatus(req, NAME)).body).toMatchObject({ state: 'ready', error: null, generation: 1 });
  });

  it('a second instance that revalidated a moment before another published still ends on the new version, no extra one', async () => {
    const other = await createHarness({ transport: 'app.request', storeDir: h.storeDir });
    try {
      // `other` reads (and remembers for a second) the basis of v1.
      await fetchBootFile((p, i) => other.request(p, i), { prefix: 'boot/r', path: up.url(KERNEL) });
      await other.idle();
      // Upstream respins; this instance publishes v2.
      const v2 = bytesOf('vmlinuz-2', 8192);
      up.set(KERNEL, v2);
      await fetchBootFile(req, { prefix: 'boot/r', path: up.url(KERNEL) });
      await h.idle();
      expect((await getStatus(req, NAME)).body).toMatchObject({ state: 'ready', generation: 2, sha256: sha256(v2) });
      // `other` asks with v1's validators: upstream answers 200, and the full job finds v2 already published.
      await fetchBootFile((p, i) => other.request(p, i), { prefix: 'boot/r', path: up.url(KERNEL) });
      await other.idle();
      const seen = (await getStatus((p, i) => other.request(p, i), NAME)).body;
      expect(seen).toMatchObject({ state: 'ready', generation: 2, sha256: sha256(v2) });
    } finally {
      await other.close();
    }
  });
});
