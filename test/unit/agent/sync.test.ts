import { mkdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAgent } from '../../../src/agent/sync.js';
import type { Agent } from '../../../src/agent/sync.js';
import {
  entryFor,
  fakeSource,
  inode,
  memoryLogger,
  nodeHasher,
  serve,
  tempRoot,
  tree,
  versionOfContent,
} from '../../helpers/agent-fixtures.js';
import type { FakeSource, TempRoot } from '../../helpers/agent-fixtures.js';

const KERNEL = 'boot/centos-9-AbCd-vmlinuz';
const INITRD = 'boot/centos-9-AbCd-initrd.img';

let t: TempRoot;
let src: FakeSource;
let agent: Agent;

function newAgent(): Agent {
  return createAgent({ source: src, root: t.root, stateDir: t.stateDir, hasher: nodeHasher, logger: memoryLogger() });
}

beforeEach(async () => {
  t = await tempRoot();
  src = fakeSource();
  agent = newAgent();
  // Files of other tools in the root: the agent must never touch them.
  await writeFile(join(t.root, 'pxelinux.0'), 'bootloader');
  await mkdir(join(t.root, 'pxelinux.cfg'));
  await writeFile(join(t.root, 'pxelinux.cfg', 'default'), 'DEFAULT menu');
  await agent.start();
});

afterEach(async () => {
  // The untouched-files invariant holds after every scenario.
  expect(await readFile(join(t.root, 'pxelinux.0'), 'utf8')).toBe('bootloader');
  expect(await readFile(join(t.root, 'pxelinux.cfg', 'default'), 'utf8')).toBe('DEFAULT menu');
  await rm(t.base, { recursive: true, force: true });
});

describe('agent sync', () => {
  it('creates exactly the DESIGN layout and keeps inodes across a no-op sync', async () => {
    const k1 = entryFor(KERNEL, 'kernel-1');
    serve(src, [[k1, 'kernel-1']]);
    const report = await agent.syncOnce();
    expect(report).toMatchObject({ ok: true, notModified: false, bytesDownloaded: 8 });
    expect(report.names).toEqual([{ name: KERNEL, outcome: 'updated', version: k1.version }]);

    const v = k1.version;
    expect(await tree(t.root)).toEqual(
      [
        'boot/',
        'boot/centos-9-AbCd-vmlinuz@',
        'boot/centos-9-AbCd-vmlinuz-orig/',
        `boot/centos-9-AbCd-vmlinuz-orig/${v}/`,
        `boot/centos-9-AbCd-vmlinuz-orig/${v}/vmlinuz`,
        'pxelinux.0',
        'pxelinux.cfg/',
        'pxelinux.cfg/default',
      ].sort(),
    );
    expect(await readlink(join(t.root, KERNEL))).toBe(`centos-9-AbCd-vmlinuz-orig/${v}/vmlinuz`);
    expect(await readFile(join(t.root, KERNEL), 'utf8')).toBe('kernel-1');
    const file = join(t.root, `${KERNEL}-orig`, v, 'vmlinuz');
    const ino = await inode(file);

    // Same etag: nothing to do.
    expect(await agent.syncOnce()).toMatchObject({ notModified: true, ok: true, bytesDownloaded: 0 });
    // A fresh agent (no etag) re-applies the catalog: everything unchanged, same inode, nothing downloaded.
    const again = await newAgent().syncOnce();
    expect(again.names).toEqual([{ name: KERNEL, outcome: 'unchanged', version: v }]);
    expect(again.bytesDownloaded).toBe(0);
    expect(await inode(file)).toBe(ino);
    expect(await readFile(join(t.stateDir, 'agent-last-sync.json'), 'utf8')).toContain('"ok": true');
  });

  it('swaps to a second version and keeps the first; GC on the third keeps current + previous', async () => {
    const [c1, c2, c3] = ['kernel-1', 'kernel-2', 'kernel-3'];
    const [v1, v2, v3] = [c1, c2, c3].map(versionOfContent) as [string, string, string];
    serve(src, [[entryFor(KERNEL, c1), c1]]);
    await agent.syncOnce();
    const ino1 = await inode(join(t.root, `${KERNEL}-orig`, v1, 'vmlinuz'));

    serve(src, [[entryFor(KERNEL, c2, [v1]), c2]]);
    expect((await agent.syncOnce()).names[0]).toMatchObject({ outcome: 'updated', version: v2 });
    expect(await readlink(join(t.root, KERNEL))).toBe(`centos-9-AbCd-vmlinuz-orig/${v2}/vmlinuz`);
    expect(await readFile(join(t.root, KERNEL), 'utf8')).toBe(c2);
    expect(await inode(join(t.root, `${KERNEL}-orig`, v1, 'vmlinuz'))).toBe(ino1);

    serve(src, [[entryFor(KERNEL, c3, [v2, v1]), c3]]);
    const r3 = await agent.syncOnce();
    expect(r3.versionsRemoved).toBe(1);
    expect(await tree(join(t.root, `${KERNEL}-orig`))).toEqual([`${v2}/`, `${v2}/vmlinuz`, `${v3}/`, `${v3}/vmlinuz`]);
    expect(await readFile(join(t.root, KERNEL), 'utf8')).toBe(c3);
  });

  it('switches kernel and initrd of one prefix in the same pass', async () => {
    serve(src, [
      [entryFor(KERNEL, 'k1'), 'k1'],
      [entryFor(INITRD, 'i1', [], 'initrd.img'), 'i1'],
    ]);
    await agent.syncOnce();
    serve(src, [
      [entryFor(KERNEL, 'k2', [versionOfContent('k1')]), 'k2'],
      [entryFor(INITRD, 'i2', [versionOfContent('i1')], 'initrd.img'), 'i2'],
    ]);
    const r = await agent.syncOnce();
    expect(r.names.map((n) => n.outcome)).toEqual(['updated', 'updated']);
    expect(await readFile(join(t.root, KERNEL), 'utf8')).toBe('k2');
    expect(await readFile(join(t.root, INITRD), 'utf8')).toBe('i2');
  });

  it('a failed download leaves the previous version serving, does not stop other names, and is retried', async () => {
    serve(src, [
      [entryFor(KERNEL, 'k1'), 'k1'],
      [entryFor(INITRD, 'i1', [], 'initrd.img'), 'i1'],
    ]);
    await agent.syncOnce();
    const k2 = entryFor(KERNEL, 'k2', [versionOfContent('k1')]);
    serve(src, [
      [k2, 'k2'],
      [entryFor(INITRD, 'i2', [versionOfContent('i1')], 'initrd.img'), 'i2'],
    ]);
    src.blobs.delete(k2.sha256);
    const agentFast = createAgent({ ...baseOpts(), maxResumes: 0 });
    const r = await agentFast.syncOnce();
    expect(r.ok).toBe(false);
    expect(r.names[0]).toMatchObject({ name: KERNEL, outcome: 'failed' });
    expect((r.names[0] as { message: string }).message).toContain('no blob');
    expect(r.names[1]).toMatchObject({ name: INITRD, outcome: 'updated' });
    expect(await readFile(join(t.root, KERNEL), 'utf8')).toBe('k1');

    // Catalog unchanged, but the last pass failed: the next sync retries instead of reporting "not modified".
    src.blobs.set(k2.sha256, new TextEncoder().encode('k2'));
    const retry = await agentFast.syncOnce();
    expect(retry).toMatchObject({ ok: true, notModified: false });
    expect(await readFile(join(t.root, KERNEL), 'utf8')).toBe('k2');
  });

  it('applies only what changed; a periodic full resync heals a change the feed never announced', async () => {
    let now = 0;
    const a = createAgent({ ...baseOpts(), clock: { now: () => now }, fullResyncMs: 60_000 });
    const [k1, i1] = [entryFor(KERNEL, 'k1'), entryFor(INITRD, 'i1', [], 'initrd.img')];
    serve(src, [
      [k1, 'k1'],
      [i1, 'i1'],
    ]);
    const first = await a.syncOnce();
    expect(first).toMatchObject({ ok: true, full: true });
    expect(first.names.map((n) => n.outcome)).toEqual(['updated', 'updated']);

    // One name changed: the pass touches that name only.
    const k2 = entryFor(KERNEL, 'k2', [k1.version]);
    serve(src, [
      [k2, 'k2'],
      [i1, 'i1'],
    ]);
    const delta = await a.syncOnce();
    expect(delta).toMatchObject({ ok: true, full: false });
    expect(delta.names).toEqual([{ name: KERNEL, outcome: 'updated', version: k2.version }]);
    expect(src.calls.at(-1)).toMatchObject({ since: first.cursor, answer: 'delta' });

    // A publication without its change event: the feed has nothing to say...
    const i2 = entryFor(INITRD, 'i2', [i1.version], 'initrd.img');
    src.blobs.set(i2.sha256, new TextEncoder().encode('i2'));
    src.publish([k2, i2], false);
    expect(await a.syncOnce()).toMatchObject({ notModified: true });
    expect(await readFile(join(t.root, INITRD), 'utf8')).toBe('i1');
    // ...until the periodic full read.
    now += 60_000;
    const resync = await a.syncOnce();
    expect(resync).toMatchObject({ ok: true, full: true });
    expect(src.calls.at(-1)).toMatchObject({ since: null, answer: 'complete' });
    expect(resync.names).toEqual([
      { name: KERNEL, outcome: 'unchanged', version: k2.version },
      { name: INITRD, outcome: 'updated', version: i2.version },
    ]);
    expect(await readFile(join(t.root, INITRD), 'utf8')).toBe('i2');
  });

  it('refuses unsafe catalog names and creates nothing for them', async () => {
    const good = entryFor(KERNEL, 'k1');
    const bad = ['../x', '/abs', 'a/b-orig/c', 'boot/../../x', 'pxelinux.cfg/01-aa', '.hidden', 'a//b'].map((name) => ({
      ...entryFor('boot/x', 'evil'),
      name,
    }));
    const badBasename = { ...entryFor('boot/y-z', 'evil'), basename: '..' };
    const badVersion = { ...entryFor('boot/w', 'evil'), version: '../../../etc' };
    src.blobs.set(good.sha256, new TextEncoder().encode('k1'));
    src.blobs.set(bad[0]!.sha256, new TextEncoder().encode('evil'));
    src.publish([...bad, badBasename, badVersion, good]);
    const before = await tree(t.base);

    const r = await agent.syncOnce();
    expect(r.ok).toBe(false);
    expect(r.names.filter((n) => n.outcome === 'failed').map((n) => n.name)).toEqual([
      ...bad.map((b) => b.name),
      'boot/y-z',
      'boot/w',
    ]);
    expect(r.names.at(-1)).toMatchObject({ name: KERNEL, outcome: 'updated' });
    const created = (await tree(t.base)).filter((p) => !before.includes(p) && !p.startsWith('tftpboot.state/'));
    expect(created).toEqual(
      [
        'tftpboot/boot/',
        'tftpboot/boot/centos-9-AbCd-vmlinuz@',
        'tftpboot/boot/centos-9-AbCd-vmlinuz-orig/',
        `tftpboot/boot/centos-9-AbCd-vmlinuz-orig/${good.version}/`,
        `tftpboot/boot/centos-9-AbCd-vmlinuz-orig/${good.version}/vmlinuz`,
      ].sort(),
    );
    expect(src.opened.map((o) => o.sha256)).toEqual([good.sha256]);
  });

  it('start() removes stale temporaries but nothing else, and never walks through symlinks', async () => {
    await mkdir(join(t.root, 'boot', 'x-orig', '0123456789abcdef'), { recursive: true });
    await writeFile(join(t.root, 'boot', 'x-orig', '0123456789abcdef', '.pxecache-tmp-dead'), 'partial');
    await symlink('x-orig/0123456789abcdef/vmlinuz', join(t.root, 'boot', '.pxecache-tmp-link'));
    await writeFile(join(t.root, '.pxecache-tmp-top'), 'partial');
    await writeFile(join(t.outside, '.pxecache-tmp-outside'), 'not ours');
    await symlink(t.outside, join(t.root, 'elsewhere'));
    await writeFile(join(t.root, 'boot', 'notes.txt'), 'keep');
    await agent.start();
    expect(await tree(t.root)).toEqual([
      'boot/',
      'boot/notes.txt',
      'boot/x-orig/',
      'boot/x-orig/0123456789abcdef/',
      'elsewhere@',
      'pxelinux.0',
      'pxelinux.cfg/',
      'pxelinux.cfg/default',
    ]);
    expect(await tree(t.outside)).toEqual(['.pxecache-tmp-outside']);
  });

  it('check() reports a mismatch, then ok after sync, then the damage done by hand', async () => {
    const k = entryFor(KERNEL, 'k1');
    serve(src, [[k, 'k1']]);
    const before = await agent.check();
    expect(before.ok).toBe(false);
    expect(before.problems).toEqual([expect.stringContaining('is missing')]);
    // check() must not make the catalog look applied.
    expect((await agent.syncOnce()).notModified).toBe(false);
    expect(await agent.check()).toEqual({ ok: true, problems: [] });

    await writeFile(join(t.root, `${KERNEL}-orig`, k.version, 'vmlinuz'), 'truncated-or-longer');
    const after = await agent.check();
    expect(after.ok).toBe(false);
    expect(after.problems[0]).toContain('bytes, catalog says 2');
  });

  it('refuses a state directory inside the root', async () => {
    expect(() => createAgent({ ...baseOpts(), stateDir: join(t.root, '.state') })).toThrow(/inside the TFTP root/);
    await symlink(join(t.root, 'pxelinux.cfg'), join(t.base, 'sneaky.state'));
    await expect(createAgent({ ...baseOpts(), stateDir: join(t.base, 'sneaky.state') }).start()).rejects.toThrow(
      /inside the TFTP root/,
    );
  });

  it('run() applies changes, logs failures with backoff, and stops on abort', async () => {
    serve(src, [[entryFor(KERNEL, 'k1'), 'k1']]);
    const logger = memoryLogger();
    const calls = { n: 0 };
    const flaky: FakeSource = {
      ...src,
      changes: (site, since, wait, signal) =>
        ++calls.n === 1 ? Promise.reject(new Error('fetcher down')) : src.changes(site, since, wait, signal),
    };
    const a = createAgent({ ...baseOpts(), source: flaky, logger });
    const ac = new AbortController();
    const running = a.run({ intervalMs: 5, waitSeconds: 0, signal: ac.signal });
    await waitFor(async () => (await a.check()).ok);
    ac.abort();
    await running;
    expect(logger.lines.some((l) => l.level === 'warn' && l.msg === 'agent: sync failed')).toBe(true);
    expect(logger.lines.some((l) => l.level === 'info' && l.msg === 'agent: sync done')).toBe(true);
  });
});

function baseOpts() {
  return {
    source: src,
    root: t.root,
    stateDir: t.stateDir,
    hasher: nodeHasher,
    logger: memoryLogger(),
    resumeDelayMs: 0,
  };
}

async function waitFor(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
