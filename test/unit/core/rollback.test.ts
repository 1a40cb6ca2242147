import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConflictError, InputError, NotFoundError } from '../../../src/core/errors.js';
import { collectChanges, currentCursor } from '../../../src/core/events.js';
import { upstreamAfter, validatorsFor } from '../../../src/core/fetch-job.js';
import { keys } from '../../../src/core/object-keys.js';
import { latestPointer, publish } from '../../../src/core/pointers.js';
import { versionOf, type StatusRecord, type VersionEntry } from '../../../src/core/records.js';
import { publishedUnder, rollback, unpin } from '../../../src/core/rollback.js';
import { createMemoryStore } from '../../../src/storage/memory-store.js';
import { putJson, type ObjectStore } from '../../../src/storage/object-store.js';

const clock = { now: () => Date.parse('2026-01-02T03:04:05Z') };
const entry = (content: string, basename = 'vmlinuz'): VersionEntry => {
  const sha256 = createHash('sha256').update(content).digest('hex');
  return {
    version: versionOf(sha256),
    sha256,
    size: content.length,
    url: `http://h/${basename}`,
    fetchedAt: new Date(0).toISOString(),
    basename,
    key: `data/${content}`,
  };
};
let started = 0;
const put = (store: ObjectStore, name: string, content: string, basename = 'vmlinuz') =>
  publish(store, {
    name,
    entry: entry(content, basename),
    etag: null,
    lastModified: null,
    startedAt: ++started,
    keep: 3,
  });
const version = (content: string) => entry(content).version;

/** kernel v1 -> v2 and initrd i1 -> i2 under prefix boot/t, plus a name of another prefix that shares the start. */
async function twoRespins(): Promise<ObjectStore> {
  const store = createMemoryStore();
  await put(store, 'boot/t-vmlinuz', 'v1');
  await put(store, 'boot/t-vmlinuz', 'v2');
  await put(store, 'boot/t-initrd.img', 'i1', 'initrd.img');
  await put(store, 'boot/t-initrd.img', 'i2', 'initrd.img');
  await put(store, 'boot/t-x-vmlinuz', 'other1');
  await put(store, 'boot/t-x-vmlinuz', 'other2');
  return store;
}

describe('rollback targets', () => {
  it('is the name itself, or the names fetched under a prefix (not those of a longer prefix)', async () => {
    const store = await twoRespins();
    expect((await publishedUnder(store, 'boot/t-vmlinuz')).map((r) => r.name)).toEqual(['boot/t-vmlinuz']);
    expect((await publishedUnder(store, 'boot/t')).map((r) => r.name)).toEqual(['boot/t-initrd.img', 'boot/t-vmlinuz']);
    await put(store, 'boot/dir/vmlinuz', 'd');
    expect((await publishedUnder(store, 'boot/dir/')).map((r) => r.name)).toEqual(['boot/dir/vmlinuz']);
  });

  it('refuses an unknown target (404, naming it) and an invalid one (400, naming the field)', async () => {
    const store = await twoRespins();
    await expect(rollback(store, clock, 'boot/nothing')).rejects.toThrow(NotFoundError);
    await expect(rollback(store, clock, 'boot/nothing')).rejects.toThrow('"boot/nothing"');
    await expect(rollback(store, clock, '../etc')).rejects.toThrow(InputError);
    await expect(rollback(store, clock, '../etc')).rejects.toThrow(/^target: /);
  });
});

describe('rollback', () => {
  it('moves to the previous kept version with a new generation, pins it, keeps the list, and announces it', async () => {
    const store = await twoRespins();
    const before = await currentCursor(store);
    const [result] = await rollback(store, clock, 'boot/t-vmlinuz');
    expect(result).toMatchObject({ outcome: 'pinned', from: version('v2') });
    const now = await latestPointer(store, 'boot/t-vmlinuz');
    expect(now).toMatchObject({ version: version('v1'), generation: 3, key: 'data/v1' });
    expect(now?.pinned).toEqual({ version: version('v1'), at: '2026-01-02T03:04:05.000Z', reason: 'rollback' });
    expect(now?.versions.map((v) => v.version)).toEqual([version('v2'), version('v1')]);
    const changes = await collectChanges(store, before);
    expect(changes?.changes).toEqual([{ kind: 'file', name: 'boot/t-vmlinuz' }]);
  });

  it('moves every name of a prefix, announced in one event', async () => {
    const store = await twoRespins();
    const before = await currentCursor(store);
    const results = await rollback(store, clock, 'boot/t');
    expect(results.map((r) => [r.name, r.record.version])).toEqual([
      ['boot/t-initrd.img', version('i1')],
      ['boot/t-vmlinuz', version('v1')],
    ]);
    expect(await currentCursor(store)).toBe(before + 1);
    expect((await latestPointer(store, 'boot/t-x-vmlinuz'))?.generation).toBe(2);
  });

  it('refuses a prefix when one of its names has no older version, changing none (409 naming it)', async () => {
    const store = await twoRespins();
    await put(store, 'boot/t-shim.efi', 's1', 'shim.efi');
    const err = await rollback(store, clock, 'boot/t').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as Error).message).toContain('boot/t-shim.efi has no kept version older');
    for (const name of ['boot/t-vmlinuz', 'boot/t-initrd.img'])
      expect((await latestPointer(store, name))?.generation).toBe(2);
  });

  it('goes to a named kept version with `to`; an unknown one is refused naming the field and listing the kept', async () => {
    const store = await twoRespins();
    await put(store, 'boot/t-vmlinuz', 'v3');
    const [moved] = await rollback(store, clock, 'boot/t-vmlinuz', { to: version('v1') });
    expect(moved?.record.version).toBe(version('v1'));
    const err = await rollback(store, clock, 'boot/t-vmlinuz', { to: 'feedfeedfeedfeed' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).field).toBe('to');
    expect((err as Error).message).toContain(version('v2'));
    const fields = { target: 'target', to: '--to' };
    await expect(rollback(store, clock, 'boot/t', { to: version('i1'), fields })).rejects.toThrow(
      /^--to: needs a single/,
    );
    expect((await latestPointer(store, 'boot/t-vmlinuz'))?.generation).toBe(4);
  });
});

describe('publishing while pinned, and unpin', () => {
  it('holds new bytes instead of publishing them; unpin publishes the held version', async () => {
    const store = await twoRespins();
    await rollback(store, clock, 'boot/t-vmlinuz');
    const held = await put(store, 'boot/t-vmlinuz', 'v3');
    expect(held.kind).toBe('held');
    expect((await latestPointer(store, 'boot/t-vmlinuz'))?.version).toBe(version('v1'));
    // What the fetch job records (fetch-job.ts upstreamAfter), written as the fetcher does.
    const url = 'http://h/vmlinuz';
    const recorded = upstreamAfter(
      { kind: 'publish', result: held, conditional: { etag: '"v3"', lastModified: null } },
      url,
      null,
    );
    expect(recorded.held).toMatchObject({ version: version('v3'), etag: '"v3"' });
    const status: StatusRecord = {
      ...{ name: 'boot/t-vmlinuz', url, state: 'ready', jobId: 'j', startedAt: 9, checkedAt: null, error: null },
      ...recorded,
    };
    await putJson(store, keys.status('boot/t-vmlinuz'), status);
    // The next revalidation asks about the held bytes, not the pinned ones.
    expect(validatorsFor(url, await latestPointer(store, 'boot/t-vmlinuz'), status)).toEqual({
      etag: '"v3"',
      lastModified: null,
    });
    const [result] = await unpin(store, clock, 'boot/t-vmlinuz', { keep: 3 });
    expect(result).toMatchObject({ outcome: 'published-held', from: version('v1') });
    const now = await latestPointer(store, 'boot/t-vmlinuz');
    expect(now).toMatchObject({ version: version('v3'), generation: 4, pinned: null, etag: '"v3"' });
    expect(now?.versions.map((v) => v.version)).toEqual([version('v3'), version('v2'), version('v1')]);
    expect((await put(store, 'boot/t-vmlinuz', 'v4')).kind).toBe('published');
  });

  it('unpin without a held version keeps the version; a name not pinned is reported and not written', async () => {
    const store = await twoRespins();
    await rollback(store, clock, 'boot/t-vmlinuz');
    const results = await unpin(store, clock, 'boot/t');
    expect(results.map((r) => [r.name, r.outcome, r.record.generation])).toEqual([
      ['boot/t-initrd.img', 'not-pinned', 2],
      ['boot/t-vmlinuz', 'unpinned', 4],
    ]);
    expect(await latestPointer(store, 'boot/t-vmlinuz')).toMatchObject({ version: version('v1'), pinned: null });
    const again = await currentCursor(store);
    expect((await unpin(store, clock, 'boot/t-vmlinuz'))[0]?.outcome).toBe('not-pinned');
    expect(await currentCursor(store)).toBe(again);
  });
});
