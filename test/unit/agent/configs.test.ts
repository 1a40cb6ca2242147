import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createStoreSource } from '../../../src/agent/store-source.js';
import { createAgent } from '../../../src/agent/sync.js';
import type { Agent, AgentOptions } from '../../../src/agent/sync.js';
import { createBootConfigs } from '../../../src/core/boot-configs.js';
import { createChangeSignal } from '../../../src/core/changes.js';
import { systemClock } from '../../../src/core/ports.js';
import { createMemoryStore } from '../../../src/storage/memory-store.js';
import {
  configFor,
  fakeSource,
  inode,
  memoryLogger,
  nodeHasher,
  serveConfigs,
  sha256,
  tempRoot,
  tree,
} from '../../helpers/agent-fixtures.js';
import type { FakeSource, TempRoot } from '../../helpers/agent-fixtures.js';

const PXE = 'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff';
const GRUB2_COLONS = 'grub2/grub.cfg-aa:bb:cc:dd:ee:ff';
const ZTP_HOST = 'ztp.cfg/AABBCCDDEEFF';

let t: TempRoot;
let src: FakeSource;
let agent: Agent;

function newAgent(extra: Partial<AgentOptions> = {}): Agent {
  return createAgent({
    source: src,
    root: t.root,
    stateDir: t.stateDir,
    hasher: nodeHasher,
    logger: memoryLogger(),
    ...extra,
  });
}

async function state(dir = t.stateDir, site = 'default'): Promise<Record<string, string>> {
  return (JSON.parse(await readFile(join(dir, `configs-${site}.json`), 'utf8')) as { files: Record<string, string> })
    .files;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

beforeEach(async () => {
  t = await tempRoot();
  src = fakeSource();
  agent = newAgent();
  // Files of the old smart proxy / operators: never touched unless the catalog says the path is live.
  await writeFile(join(t.root, 'pxelinux.0'), 'bootloader');
  await writeFile(join(t.outside, 'operator.txt'), 'outside');
  await agent.start();
});

afterEach(async () => {
  expect(await readFile(join(t.root, 'pxelinux.0'), 'utf8')).toBe('bootloader');
  // No temporary is ever left behind, in the root or in the state directory.
  expect((await tree(t.base)).filter((p) => p.includes('.pxecache-tmp-'))).toEqual([]);
  // Nothing is ever written (or deleted) outside the root and the state directory.
  expect(await tree(t.outside)).toEqual(['operator.txt']);
  expect(await readFile(join(t.outside, 'operator.txt'), 'utf8')).toBe('outside');
  await rm(t.base, { recursive: true, force: true });
});

describe('agent config sync', () => {
  it('writes a config with its exact bytes, world-readable, and keeps its state outside the root', async () => {
    const body = 'DEFAULT linux\nLABEL linux\n  KERNEL boot/x-vmlinuz\n';
    const e = configFor(PXE, body);
    serveConfigs(src, 'default', [[e, body]]);
    const r = await agent.syncOnce();
    expect(r.ok).toBe(true);
    expect(r.configs).toMatchObject({ site: 'default', ok: true, written: [PXE], deleted: [], failed: [], kept: [] });
    expect(await readFile(join(t.root, PXE), 'utf8')).toBe(body);
    expect((await stat(join(t.root, PXE))).mode & 0o777).toBe(0o644);
    expect(await tree(t.root)).toEqual(['pxelinux.0', 'pxelinux.cfg/', PXE]);
    expect(await state()).toEqual({ [PXE]: e.sha256 });
    expect(await agent.check()).toEqual({ ok: true, problems: [] });

    // Unchanged catalog: nothing to do; a fresh agent finds the bytes in place and rewrites nothing.
    const ino = await inode(join(t.root, PXE));
    expect((await agent.syncOnce()).configs).toMatchObject({ notModified: true, written: [] });
    expect((await newAgent().syncOnce()).configs).toMatchObject({ ok: true, written: [] });
    expect(await inode(join(t.root, PXE))).toBe(ino);
  });

  it('replaces a config atomically: a new inode renamed over the path, a reader of the old one unaffected', async () => {
    serveConfigs(src, 'default', [[configFor(PXE, 'one'), 'one']]);
    await agent.syncOnce();
    const ino1 = await inode(join(t.root, PXE));
    const reader = await open(join(t.root, PXE), 'r');
    try {
      const two = 'two, and longer than one';
      serveConfigs(src, 'default', [[configFor(PXE, two), two]]);
      expect((await agent.syncOnce()).configs.written).toEqual([PXE]);
      expect(await readFile(join(t.root, PXE), 'utf8')).toBe(two);
      expect(await inode(join(t.root, PXE))).not.toBe(ino1);
      // In-place rewriting (smart-proxy's File.open 'w') would truncate what an open reader sees.
      expect((await reader.readFile()).toString()).toBe('one');
      expect(await state()).toEqual({ [PXE]: sha256(two) });
    } finally {
      await reader.close();
    }
  });

  it('a tombstone deletes a config the agent wrote', async () => {
    await mkdir(join(t.root, 'pxelinux.cfg'));
    await writeFile(join(t.root, 'pxelinux.cfg', 'default'), 'DEFAULT menu');
    serveConfigs(src, 'default', [[configFor(PXE, 'host'), 'host']]);
    await agent.syncOnce();
    serveConfigs(src, 'default', [[configFor(PXE, 'host', true), 'host']]);
    const r = await agent.syncOnce();
    expect(r.configs).toMatchObject({ ok: true, deleted: [PXE], written: [], kept: [] });
    expect(await exists(join(t.root, PXE))).toBe(false);
    expect(await readFile(join(t.root, 'pxelinux.cfg', 'default'), 'utf8')).toBe('DEFAULT menu');
    expect(await state()).toEqual({});
  });

  it('a tombstone leaves a file the agent did not write untouched, even with the same bytes', async () => {
    // The old smart proxy wrote these; Foreman deletes the hosts while pxecache is in charge.
    await mkdir(join(t.root, 'pxelinux.cfg'));
    await writeFile(join(t.root, PXE), 'operator');
    await writeFile(join(t.root, 'pxelinux.cfg', '01-11-22-33-44-55-66'), 'other operator file');
    const ino = await inode(join(t.root, PXE));
    serveConfigs(src, 'default', [
      [configFor(PXE, 'operator', true), 'operator'],
      [configFor('pxelinux.cfg/01-11-22-33-44-55-66', 'x', true), 'x'],
    ]);
    const r = await agent.syncOnce();
    expect(r.configs).toMatchObject({ ok: true, deleted: [], written: [], kept: [], failed: [] });
    expect(await readFile(join(t.root, PXE), 'utf8')).toBe('operator');
    expect(await inode(join(t.root, PXE))).toBe(ino);
    expect(await readFile(join(t.root, 'pxelinux.cfg', '01-11-22-33-44-55-66'), 'utf8')).toBe('other operator file');
  });

  it('a live config overwrites an operator file, which the agent then owns and may delete', async () => {
    await mkdir(join(t.root, 'pxelinux.cfg'));
    await writeFile(join(t.root, PXE), 'left by the old smart proxy');
    serveConfigs(src, 'default', [[configFor(PXE, 'foreman'), 'foreman']]);
    expect((await agent.syncOnce()).configs.written).toEqual([PXE]);
    expect(await readFile(join(t.root, PXE), 'utf8')).toBe('foreman');
    serveConfigs(src, 'default', [[configFor(PXE, 'foreman', true), 'foreman']]);
    expect((await agent.syncOnce()).configs.deleted).toEqual([PXE]);
    expect(await exists(join(t.root, PXE))).toBe(false);
  });

  it('a file changed by hand after the agent wrote it is not deleted by a tombstone, and that is reported', async () => {
    serveConfigs(src, 'default', [[configFor(PXE, 'foreman'), 'foreman']]);
    await agent.syncOnce();
    await writeFile(join(t.root, PXE), 'hand-tuned by an operator');
    serveConfigs(src, 'default', [[configFor(PXE, 'foreman', true), 'foreman']]);
    const r = await agent.syncOnce();
    expect(r.configs.deleted).toEqual([]);
    expect(r.configs.kept).toEqual([
      { path: PXE, message: expect.stringContaining('changed since the agent wrote it') },
    ]);
    expect(await readFile(join(t.root, PXE), 'utf8')).toBe('hand-tuned by an operator');
    // The path is the operator's now: not in the state, and a later pass neither deletes nor re-reports it.
    expect(await state()).toEqual({});
    const again = await newAgent().syncOnce();
    expect(again.configs).toMatchObject({ ok: true, deleted: [], kept: [] });
    expect(await readFile(join(t.root, PXE), 'utf8')).toBe('hand-tuned by an operator');
  });

  it('writes and deletes a path with colons (grub2/grub.cfg-<mac with colons>)', async () => {
    serveConfigs(src, 'default', [[configFor(GRUB2_COLONS, 'menuentry x {}'), 'menuentry x {}']]);
    expect((await agent.syncOnce()).configs).toMatchObject({ ok: true, written: [GRUB2_COLONS] });
    expect(await readFile(join(t.root, 'grub2', 'grub.cfg-aa:bb:cc:dd:ee:ff'), 'utf8')).toBe('menuentry x {}');
    serveConfigs(src, 'default', [[configFor(GRUB2_COLONS, 'menuentry x {}', true), '']]);
    expect((await agent.syncOnce()).configs.deleted).toEqual([GRUB2_COLONS]);
    expect(await tree(t.root)).toEqual(['grub2/', 'pxelinux.0']);
  });

  it('ztp.cfg wanted as a file where a directory is (and vice versa) fails that path and touches nothing', async () => {
    await mkdir(join(t.root, 'ztp.cfg'));
    await writeFile(join(t.root, ZTP_HOST), 'operator ztp');
    const before = await tree(t.root);
    serveConfigs(src, 'default', [
      [configFor('ztp.cfg', 'ztp default'), 'ztp default'],
      [configFor(PXE, 'unrelated'), 'unrelated'],
    ]);
    const r = await agent.syncOnce();
    expect(r.ok).toBe(false);
    expect(r.configs.failed).toEqual([{ path: 'ztp.cfg', message: expect.stringMatching(/ztp\.cfg is a directory/) }]);
    expect(r.configs.written).toEqual([PXE]); // other paths still go through
    expect(await tree(t.root)).toEqual([...before, 'pxelinux.cfg/', PXE].sort());
    expect(await readFile(join(t.root, ZTP_HOST), 'utf8')).toBe('operator ztp');
    expect((await agent.check()).problems).toEqual([expect.stringContaining('is a directory')]);

    // The other way round: a host config under ztp.cfg/ while ztp.cfg is a plain file.
    const u = await tempRoot();
    try {
      await writeFile(join(u.root, 'ztp.cfg'), 'operator ztp default');
      const other = newAgent({ root: u.root, stateDir: u.stateDir });
      await other.start();
      serveConfigs(src, 'default', [[configFor(ZTP_HOST, 'host ztp'), 'host ztp']]);
      const r2 = await other.syncOnce();
      expect(r2.configs.failed).toEqual([
        { path: ZTP_HOST, message: expect.stringMatching(/ztp\.cfg is a file, not a directory/) },
      ]);
      expect(await tree(u.root)).toEqual(['ztp.cfg']);
      expect(await readFile(join(u.root, 'ztp.cfg'), 'utf8')).toBe('operator ztp default');
    } finally {
      await rm(u.base, { recursive: true, force: true });
    }
  });

  it('refuses unsafe paths, live or deleted, and writes or deletes nothing for them', async () => {
    // Even a state file claiming them (hand-edited or from a bug) must not make the agent delete through them.
    await mkdir(t.stateDir, { recursive: true });
    await writeFile(
      join(t.stateDir, 'configs-default.json'),
      JSON.stringify({ files: { '../outside/operator.txt': sha256('outside') } }),
    );
    const unsafe = [
      '../x',
      '/etc/passwd',
      'boot/x',
      'pxelinux.cfg/../../x',
      '.hidden/x',
      'pxelinux.cfg',
      'pxelinux.cfg/.x',
      'grub2/-x',
      'pxelinux.cfg//x',
      'pxelinux.cfg/a b',
      'pxelinux.cfg/x\n',
      'grub\\x',
      'host-config/x',
      'x'.repeat(300),
    ];
    const good = configFor(PXE, 'good');
    serveConfigs(src, 'default', [
      ...unsafe.map((p) => [configFor(p, 'evil'), 'evil'] as const),
      [configFor('../outside/operator.txt', 'outside', true), 'outside'],
      [good, 'good'],
    ]);
    const before = await tree(t.base);
    const r = await agent.syncOnce();
    expect(r.configs.ok).toBe(false);
    expect(r.configs.failed.map((f) => f.path).sort()).toEqual([...unsafe, '../outside/operator.txt'].sort());
    for (const f of r.configs.failed) expect(f.message).toMatch(/refused/);
    expect(r.configs.written).toEqual([PXE]);
    const created = (await tree(t.base)).filter((p) => !before.includes(p) && !p.startsWith('tftpboot.state/'));
    expect(created).toEqual(['tftpboot/pxelinux.cfg/', `tftpboot/${PXE}`]);
    expect(await readFile(join(t.outside, 'operator.txt'), 'utf8')).toBe('outside');
    expect(src.opened.map((o) => o.sha256)).toEqual([good.sha256]);
  });

  it('never writes through a symlinked directory in the root', async () => {
    await symlink(t.outside, join(t.root, 'pxelinux.cfg'));
    serveConfigs(src, 'default', [[configFor('pxelinux.cfg/operator.txt', 'evil'), 'evil']]);
    const r = await agent.syncOnce();
    expect(r.configs.failed).toEqual([
      { path: 'pxelinux.cfg/operator.txt', message: expect.stringContaining('is a symlink') },
    ]);
    expect(await readFile(join(t.outside, 'operator.txt'), 'utf8')).toBe('outside');
  });

  it('verifies size and sha256 before the rename: corrupt bytes leave no file and are retried', async () => {
    const e = configFor(PXE, 'right');
    serveConfigs(src, 'default', [[e, 'right']]);
    src.blobs.set(e.sha256, new TextEncoder().encode('wrong'));
    const r = await agent.syncOnce();
    expect(r.ok).toBe(false);
    expect(r.configs.failed).toEqual([{ path: PXE, message: expect.stringContaining('sha256: expected') }]);
    expect(await exists(join(t.root, PXE))).toBe(false);
    src.blobs.set(e.sha256, new TextEncoder().encode('right'));
    // Same catalog, but the last pass failed: retried rather than "not modified".
    expect((await agent.syncOnce()).configs).toMatchObject({ ok: true, written: [PXE] });
    expect(await readFile(join(t.root, PXE), 'utf8')).toBe('right');
  });

  it('check() reports a missing config and one changed by hand', async () => {
    serveConfigs(src, 'default', [[configFor(PXE, 'foreman'), 'foreman']]);
    expect((await agent.check()).problems).toEqual([expect.stringContaining('is missing')]);
    await agent.syncOnce();
    expect(await agent.check()).toEqual({ ok: true, problems: [] });
    await writeFile(join(t.root, PXE), 'foremaN');
    expect((await agent.check()).problems).toEqual([expect.stringContaining('other bytes than the catalog')]);
  });

  it('reports an unknown site without stopping boot files', async () => {
    const east = newAgent({ site: 'east' });
    const r = await east.syncOnce();
    expect(r.ok).toBe(false);
    expect(r.configs.error).toMatch(/configs of site "east": .*unknown/);
    expect((await east.check()).problems).toEqual([expect.stringContaining('site "east"')]);
    expect(() => newAgent({ site: '../x' })).toThrow(/site/);
  });

  it('a config written while the agent long-polls appears at once: the change feed wakes for configs too', async () => {
    const store = createMemoryStore();
    const changes = createChangeSignal();
    const configs = createBootConfigs({ store, hasher: nodeHasher, clock: systemClock, newId: randomUUID, changes });
    // The poll interval is far longer than the test's timeout: only the wake-up of the long-poll answers in time.
    const source = createStoreSource({ store, description: 'memory', pollMs: 600_000, wake: (s) => changes.next(s) });
    const a = newAgent({ source });
    const ac = new AbortController();
    const running = a.run({ intervalMs: 5, waitSeconds: 30, signal: ac.signal });
    try {
      await new Promise((r) => setTimeout(r, 50));
      await configs.set('default', 'Pxelinux', 'aa:bb:cc:dd:ee:ff', 'late', {});
      await waitFor(() => exists(join(t.root, PXE)), 3000);
      expect(await readFile(join(t.root, PXE), 'utf8')).toBe('late');
    } finally {
      ac.abort();
      await running;
    }
  });
});

describe('two sites through the store', () => {
  it("site A's configs never appear in site B's root, and each state lives in its own state dir", async () => {
    const store = createMemoryStore();
    const configs = createBootConfigs({ store, hasher: nodeHasher, clock: systemClock, newId: randomUUID });
    await configs.set('east', 'Pxelinux', 'aa:bb:cc:dd:ee:ff', 'EAST host', {});
    await configs.set('west', 'Pxelinux', 'aa:bb:cc:dd:ee:ff', 'WEST host', {});
    await configs.set('east', 'Pxegrub2', '11:22:33:44:55:66', 'east only', {});
    await configs.createDefault('west', 'Ztp', 'west ztp default', {});
    const source = createStoreSource({ store, description: 'memory', pollMs: 10 });
    const west = await tempRoot();
    try {
      const agents = {
        east: createAgent({
          source,
          site: 'east',
          root: t.root,
          stateDir: t.stateDir,
          hasher: nodeHasher,
          logger: memoryLogger(),
        }),
        west: createAgent({
          source,
          site: 'west',
          root: west.root,
          stateDir: west.stateDir,
          hasher: nodeHasher,
          logger: memoryLogger(),
        }),
      };
      await agents.west.start();
      expect((await agents.east.syncOnce()).ok).toBe(true);
      expect((await agents.west.syncOnce()).ok).toBe(true);

      expect(await tree(t.root)).toEqual([
        'grub2/',
        'grub2/grub.cfg-01-11-22-33-44-55-66',
        'grub2/grub.cfg-11:22:33:44:55:66',
        'pxelinux.0',
        'pxelinux.cfg/',
        PXE,
      ]);
      expect(await readFile(join(t.root, PXE), 'utf8')).toBe('EAST host');
      expect(await tree(west.root)).toEqual(['pxelinux.cfg/', PXE, 'ztp.cfg']);
      expect(await readFile(join(west.root, PXE), 'utf8')).toBe('WEST host');
      expect(Object.keys(await state(t.stateDir, 'east')).sort()).toEqual([
        'grub2/grub.cfg-01-11-22-33-44-55-66',
        'grub2/grub.cfg-11:22:33:44:55:66',
        PXE,
      ]);
      expect(Object.keys(await state(west.stateDir, 'west')).sort()).toEqual([PXE, 'ztp.cfg']);
      expect(await tree(t.stateDir)).not.toContain('configs-west.json');

      // A delete on one site removes nothing at the other.
      await configs.remove('west', 'Pxelinux', 'aa:bb:cc:dd:ee:ff');
      expect((await agents.west.syncOnce()).configs.deleted).toEqual([PXE]);
      expect((await agents.east.syncOnce()).configs).toMatchObject({ notModified: true });
      expect(await readFile(join(t.root, PXE), 'utf8')).toBe('EAST host');
      expect(await exists(join(west.root, PXE))).toBe(false);
    } finally {
      await rm(west.base, { recursive: true, force: true });
    }
  });
});

async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
