/**
 * The change log on a real S3 engine (the shared Ceph RGW): create-only appends from several processes, deltas
 * listed with StartAfter, compaction, and what an agent reading the bucket directly pays for an idle poll and for a
 * one-name change ("Catalog that scales": the file and S3 stores alike).
 */
import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStoreSource } from '../../src/agent/store-source.js';
import { appendChanges, changesSince, compactEvents } from '../../src/core/events.js';
import { publish } from '../../src/core/pointers.js';
import { versionOf, type Changes, type VersionEntry } from '../../src/core/records.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { createS3Store } from '../../src/storage/s3-store.js';
import { countingStore } from '../helpers/counting-store.js';
import { createTestBucket, rgwClient } from '../helpers/rgw.js';

const NAMES = 300;
const name = (i: number) => `boot/s3-${String(i).padStart(4, '0')}-vmlinuz`;
let startedAt = 0;

function entry(content: string): VersionEntry {
  const sha256 = createHash('sha256').update(content).digest('hex');
  const at = new Date(0).toISOString();
  return {
    version: versionOf(sha256),
    sha256,
    size: content.length,
    url: 'http://m/vmlinuz',
    fetchedAt: at,
    basename: 'vmlinuz',
    key: `data/${sha256}`,
  };
}

const publishOne = (store: ObjectStore, n: string, content: string) =>
  publish(store, { name: n, entry: entry(content), etag: null, lastModified: null, startedAt: ++startedAt, keep: 3 });

describe('change log on S3 (Ceph RGW)', () => {
  let client: S3Client;
  let bucket: string;
  let cleanup: () => Promise<void>;
  /** A store object per "process": nothing in-process is shared between them. */
  const instance = (prefix: string) => createS3Store({ bucket, prefix, client });

  beforeAll(async () => {
    client = rgwClient();
    ({ bucket, cleanup } = await createTestBucket(client));
  });
  afterAll(async () => {
    await cleanup();
    client.destroy();
  });

  it('10 processes appending at once take seq 1..10 exactly once; compaction then forces a reset', async () => {
    const seqs = await Promise.all(
      Array.from({ length: 10 }, (_, i) => appendChanges(instance('log/'), [{ kind: 'file', name: `n${i}` }], 'x')),
    );
    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    const store = instance('log/');
    const all = await changesSince(store, 0);
    expect(all.reset === false && all.events.map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    const page = await changesSince(store, 4, 3);
    expect(page).toMatchObject({ reset: false, cursor: 7, more: true });
    expect(await compactEvents(store, 4)).toBe(6);
    expect(await changesSince(store, 5)).toEqual({ reset: true });
    const kept = await changesSince(store, 6);
    expect(kept.reset === false && kept.events.map((e) => e.seq)).toEqual([7, 8, 9, 10]);
  });

  it('an agent on the bucket pays two requests per idle poll and O(1) for a one-name change', async () => {
    const writer = instance('feed/');
    const names = Array.from({ length: NAMES }, (_, i) => name(i));
    for (let i = 0; i < names.length; i += 32)
      await Promise.all(names.slice(i, i + 32).map((n) => publishOne(writer, n, `${n} v1`)));

    const counted = countingStore(instance('feed/'));
    const source = createStoreSource({ store: counted.store, description: 's3', pollMs: 100 });
    const snapshot = (await source.changes('default', null)) as Changes;
    expect(snapshot).toMatchObject({ complete: true });
    expect(snapshot.files).toHaveLength(NAMES);

    counted.reset();
    expect(await source.changes('default', snapshot.cursor)).toBe('not-modified');
    expect(counted.calls.map((c) => c.op)).toEqual(['get', 'head']);

    await publishOne(instance('feed/'), name(42), `${name(42)} v2`);
    counted.reset();
    const delta = (await source.changes('default', snapshot.cursor)) as Changes;
    expect(delta).toMatchObject({ complete: false, configs: [] });
    expect(delta.files.map((f) => [f.name, f.generation])).toEqual([[name(42), 2]]);
    expect(counted.count('list')).toBe(1);
    expect(counted.count()).toBeLessThanOrEqual(10);
    expect(counted.count('put', 'delete')).toBe(0);
    console.log(`change-feed-s3: one-name delta with ${NAMES} names: ${counted.count()} S3 requests`);

    // A long-poll from the bucket sees another process's publication.
    const pending = source.changes('default', delta.cursor, 10);
    await new Promise((r) => setTimeout(r, 50));
    await publishOne(instance('feed/'), name(7), `${name(7)} v2`);
    const woken = (await pending) as Changes;
    expect(woken.files.map((f) => f.name)).toEqual([name(7)]);
  });
});
