/**
 * Who keeps `catalog.json` current: a serving fetcher refreshes it at start and shortly after each publication,
 * and a one-shot fetch brings an existing one up to date at close (never reading every name on its way out).
 * Real upstream on loopback, real file store.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../src/core/object-keys.js';
import { silentLogger } from '../../src/core/ports.js';
import { createNodeFetcher } from '../../src/runtime/node/fetcher-deps.js';
import { createFileStore } from '../../src/storage/file-store.js';
import { getJson, type ObjectStore } from '../../src/storage/object-store.js';
import { TEST_SETTINGS } from '../helpers/app-harness.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';

interface Snapshot {
  seq: number;
  entries: { name: string; generation: number }[];
}
const snapshotOf = (store: ObjectStore) => getJson<Snapshot>(store, keys.catalogSnapshot);
const names = async (store: ObjectStore) => (await snapshotOf(store))?.entries.map((e) => e.name) ?? null;

describe('catalog snapshot upkeep', () => {
  let upstream: Upstream;
  const dirs: string[] = [];
  const storeDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pxecache-snapshot-'));
    dirs.push(dir);
    return dir;
  };

  beforeAll(async () => {
    upstream = await createUpstream();
    for (const f of ['vmlinuz', 'initrd.img', 'shim.efi']) upstream.set(`/os/${f}`, `bytes of ${f}`);
  });
  afterAll(async () => {
    await upstream.close();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  const fetchInto = async (store: ObjectStore, path: string, maintain: boolean) => {
    const node = createNodeFetcher(store, TEST_SETTINGS, silentLogger, undefined, { env: {} });
    if (maintain) node.maintainCatalog();
    try {
      const status = await (await node.fetcher.submit({ prefix: 'boot/snap', path: upstream.url(path) })).done;
      expect(status.state).toBe('ready');
    } finally {
      await node.close();
    }
  };

  it('a serving fetcher writes it at start and after publishing', async () => {
    const store = createFileStore({ root: await storeDir() });
    const node = createNodeFetcher(store, TEST_SETTINGS, silentLogger, undefined, { env: {} });
    try {
      node.maintainCatalog();
      await waitFor('the start-up snapshot', async () => {
        const value = await names(store);
        return { done: value !== null, value };
      });
      expect(await names(store)).toEqual([]);
      for (const f of ['vmlinuz', 'initrd.img']) {
        const done = (await node.fetcher.submit({ prefix: 'boot/snap', path: upstream.url(`/os/${f}`) })).done;
        expect((await done).state).toBe('ready');
      }
      // Without closing: the refresh follows the publications by its delay (2 s).
      const after = async () => {
        const value = await names(store);
        return { done: value?.length === 2, value };
      };
      await waitFor('the snapshot after two publications', after, { timeoutMs: 15_000 });
      expect(await names(store)).toEqual(['boot/snap-initrd.img', 'boot/snap-vmlinuz']);
    } finally {
      await node.close();
    }
  });

  it('a one-shot fetch updates an existing snapshot at close, and writes none where there was none', async () => {
    const store = createFileStore({ root: await storeDir() });
    await fetchInto(store, '/os/vmlinuz', false);
    expect(await snapshotOf(store)).toBeNull();

    await fetchInto(store, '/os/initrd.img', true);
    expect(await names(store)).toEqual(['boot/snap-initrd.img', 'boot/snap-vmlinuz']);
    await fetchInto(store, '/os/shim.efi', false);
    expect(await names(store)).toEqual(['boot/snap-initrd.img', 'boot/snap-shim.efi', 'boot/snap-vmlinuz']);
  });
});
