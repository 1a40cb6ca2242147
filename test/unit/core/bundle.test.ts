import { describe, expect, it } from 'vitest';
import { bundleBytes, bundleManifest, importBundle } from '../../../src/core/bundle.js';
import { IntegrityError } from '../../../src/core/errors.js';
import { createTargetResolver } from '../../../src/core/fetch-target.js';
import { publishedNames } from '../../../src/core/catalog.js';
import { latestPointer } from '../../../src/core/pointers.js';
import { systemClock } from '../../../src/core/ports.js';
import { publishSeed, stageBytes, type SeedDeps } from '../../../src/core/seed.js';
import { nodeUrlPolicy } from '../../../src/core/url-policy.js';
import { createMemoryStore } from '../../../src/storage/memory-store.js';
import { readAll } from '../../../src/storage/object-store.js';
import { nodeHasher } from '../../helpers/agent-fixtures.js';

let ids = 0;
const depsOf = (): SeedDeps => ({
  store: createMemoryStore(),
  hasher: nodeHasher,
  clock: systemClock,
  newId: () => `id-${++ids}`,
  keepVersions: 3,
});

async function* one(bytes: Uint8Array) {
  yield bytes;
}

async function seeded(content: string) {
  const deps = depsOf();
  const staged = await stageBytes(deps, one(new TextEncoder().encode(content)));
  const seed = { name: 'boot/a-vmlinuz', basename: 'vmlinuz', url: 'http://m/vmlinuz', staged };
  await publishSeed(deps, { ...seed, etag: '"e1"', lastModified: null });
  return deps;
}

describe('bundles', () => {
  it('round-trips a name with its validators through the bytes of a bundle', async () => {
    const from = await seeded('kernel');
    const exported = await bundleManifest(from.store, ['boot/a-vmlinuz'], new Date(0).toISOString());
    const bytes = await readAll(bundleBytes(from, exported));
    const to = depsOf();
    const resolve = createTargetResolver(nodeUrlPolicy, undefined);
    const results = await importBundle({ ...to, resolve }, one(bytes));
    expect(results.map((r) => r.outcome)).toEqual(['imported']);
    expect(await latestPointer(to.store, 'boot/a-vmlinuz')).toMatchObject({
      sha256: exported.manifest.names[0]?.sha256,
      url: 'http://m/vmlinuz',
      etag: '"e1"',
    });
  });

  it('fails an export whose stored bytes no longer match their sha256, rather than passing them on', async () => {
    const from = await seeded('kernel');
    const exported = await bundleManifest(from.store, ['boot/a-vmlinuz'], new Date(0).toISOString());
    await from.store.put(exported.keyOf.values().next().value ?? '', 'kernex');
    await expect(readAll(bundleBytes(from, exported))).rejects.toBeInstanceOf(IntegrityError);
  });

  it('refuses a manifest naming a file outside the fetch rules, publishing nothing', async () => {
    const from = await seeded('kernel');
    const exported = await bundleManifest(from.store, ['boot/a-vmlinuz'], new Date(0).toISOString());
    const names = [{ ...exported.manifest.names[0], name: 'pxelinux.cfg/x' }];
    const bad = { ...exported, manifest: { ...exported.manifest, names } } as typeof exported;
    const to = depsOf();
    const resolve = createTargetResolver(nodeUrlPolicy, undefined);
    await expect(importBundle({ ...to, resolve }, bundleBytes(from, bad))).rejects.toThrow(
      /names\[0\]: name: "pxelinux.cfg\/x" falls inside "pxelinux.cfg"/,
    );
    expect(await publishedNames(to.store)).toEqual([]);
  });
});
