import { mkdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureVersionFile, pathsOf, swapLink } from '../../../src/agent/activate.js';
import { createAgent } from '../../../src/agent/sync.js';
import { IntegrityError } from '../../../src/core/errors.js';
import {
  entryFor,
  fakeSource,
  inode,
  memoryLogger,
  nodeHasher,
  serve,
  tempRoot,
  tree,
} from '../../helpers/agent-fixtures.js';
import type { FakeSource, TempRoot } from '../../helpers/agent-fixtures.js';

const NAME = 'boot/centos-AbCd-vmlinuz';
let t: TempRoot;
let src: FakeSource;

beforeEach(async () => {
  t = await tempRoot();
  src = fakeSource();
});
afterEach(() => rm(t.base, { recursive: true, force: true }));

const agentOpts = () => ({
  source: src,
  root: t.root,
  stateDir: t.stateDir,
  hasher: nodeHasher,
  logger: memoryLogger(),
  resumeDelayMs: 0,
});

describe('ensureVersionFile', () => {
  it('writes the verified file world-readable and reuses it when present with the right size', async () => {
    const e = entryFor(NAME, 'kernel bytes');
    serve(src, [[e, 'kernel bytes']]);
    const r = await ensureVersionFile({ root: t.root, entry: e, source: src, hasher: nodeHasher });
    expect(r).toMatchObject({ downloaded: 12, reused: false });
    expect(r.paths.file).toBe(join(t.root, 'boot', 'centos-AbCd-vmlinuz-orig', e.version, 'vmlinuz'));
    expect((await stat(r.paths.file)).mode & 0o777).toBe(0o644);
    const ino = await inode(r.paths.file);
    const again = await ensureVersionFile({ root: t.root, entry: e, source: src, hasher: nodeHasher });
    expect(again).toMatchObject({ downloaded: 0, reused: true });
    expect(await inode(r.paths.file)).toBe(ino);
    expect(src.opened).toHaveLength(1);
  });

  it('resumes with a Range offset after a mid-stream failure', async () => {
    const content = 'abcdefghijklmnopqrstuvwxyz';
    const e = entryFor(NAME, content);
    serve(src, [[e, content]]);
    src.failAfter.set(e.sha256, 10);
    const r = await ensureVersionFile({ root: t.root, entry: e, source: src, hasher: nodeHasher, resumeDelayMs: 0 });
    expect(await readFile(r.paths.file, 'utf8')).toBe(content);
    // Chunks of 3: bytes 0..8 arrived before the failure at the chunk ending past byte 10.
    expect(src.opened.map((o) => o.offset)).toEqual([0, 9]);
    expect(r.downloaded).toBe(content.length);
  });

  it('gives up after maxResumes and leaves no temporary behind', async () => {
    const e = entryFor(NAME, 'abcdefghij');
    serve(src, [[e, 'abcdefghij']]);
    src.failAfter.set(e.sha256, 4);
    await expect(
      ensureVersionFile({ root: t.root, entry: e, source: src, hasher: nodeHasher, maxResumes: 0 }),
    ).rejects.toThrow(/failed after 1 attempts at byte 3\/10: ECONNRESET/);
    expect(await tree(join(t.root, 'boot'))).toEqual([
      `centos-AbCd-vmlinuz-orig/`,
      `centos-AbCd-vmlinuz-orig/${e.version}/`,
    ]);
  });

  it('refuses bytes whose sha256 does not match and deletes the temporary', async () => {
    const e = entryFor(NAME, 'good bytes');
    src.blobs.set(e.sha256, new TextEncoder().encode('evil bytes')); // same length, other content
    const err = await ensureVersionFile({ root: t.root, entry: e, source: src, hasher: nodeHasher }).catch((x) => x);
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toContain(e.sha256);
    expect(await tree(pathsOf(t.root, e).versionDir)).toEqual([]);
  });

  it('stops at the first byte past the catalog size without retrying', async () => {
    const e = entryFor(NAME, 'abcdefghij');
    src.blobs.set(e.sha256, new TextEncoder().encode('abcdefghijkl'));
    await expect(ensureVersionFile({ root: t.root, entry: e, source: src, hasher: nodeHasher })).rejects.toThrow(
      /size: expected 10, got at least 12/,
    );
    expect(src.opened).toHaveLength(1);
    expect(await tree(pathsOf(t.root, e).versionDir)).toEqual([]);
  });

  it('writes nothing outside the root through a planted symlink (root/boot -> outside)', async () => {
    await symlink(t.outside, join(t.root, 'boot'));
    const e = entryFor(NAME, 'k1');
    serve(src, [[e, 'k1']]);
    await expect(ensureVersionFile({ root: t.root, entry: e, source: src, hasher: nodeHasher })).rejects.toThrow(
      /is a symlink/,
    );
    const r = await createAgent(agentOpts()).syncOnce();
    expect(r.names[0]).toMatchObject({ outcome: 'failed' });
    expect(await tree(t.outside)).toEqual([]);
    expect(await tree(t.root)).toEqual(['boot@']);
  });
});

describe('sync: publication and integrity', () => {
  it('a blob with wrong bytes is not published and the old version keeps serving', async () => {
    const agent = createAgent(agentOpts());
    const e1 = entryFor(NAME, 'kernel-1');
    serve(src, [[e1, 'kernel-1']]);
    await agent.syncOnce();
    const e2 = entryFor(NAME, 'kernel-2', [e1.version]);
    serve(src, [[e2, 'kernel-2']]);
    src.blobs.set(e2.sha256, new TextEncoder().encode('kernel-X'));
    const r = await agent.syncOnce();
    expect(r.names[0]).toMatchObject({ outcome: 'failed', message: expect.stringContaining('sha256') });
    expect(await readlink(join(t.root, NAME))).toBe(`centos-AbCd-vmlinuz-orig/${e1.version}/vmlinuz`);
    expect(await readFile(join(t.root, NAME), 'utf8')).toBe('kernel-1');
    expect(await tree(join(t.root, `${NAME}-orig`, e2.version))).toEqual([]);
  });
});

describe('swapLink', () => {
  async function prepared(content = 'k1') {
    const e = entryFor(NAME, content);
    serve(src, [[e, content]]);
    return (await ensureVersionFile({ root: t.root, entry: e, source: src, hasher: nodeHasher })).paths;
  }

  it('creates a relative link, then is a no-op for the same target', async () => {
    const paths = await prepared();
    expect(await swapLink(t.root, paths)).toBe('created');
    const ino = await inode(paths.link);
    expect(await swapLink(t.root, paths)).toBe('unchanged');
    expect(await inode(paths.link)).toBe(ino);
    expect(await readlink(paths.link)).toBe(paths.linkTarget);
    expect(paths.linkTarget.startsWith('/')).toBe(false);
  });

  it('replaces a plain file left by the old smart proxy', async () => {
    await mkdir(join(t.root, 'boot'));
    await writeFile(join(t.root, NAME), 'old curl output');
    const paths = await prepared();
    expect(await swapLink(t.root, paths)).toBe('replaced');
    expect(await readlink(paths.link)).toBe(paths.linkTarget);
    expect(await tree(join(t.root, 'boot'))).not.toContainEqual(expect.stringContaining('.pxecache-tmp-'));
  });

  it('refuses a directory at <name> and leaves it untouched (and sync creates no -orig for it)', async () => {
    await mkdir(join(t.root, NAME), { recursive: true });
    await writeFile(join(t.root, NAME, 'inside'), 'x');
    const paths = await prepared();
    await expect(swapLink(t.root, paths)).rejects.toThrow(/is a directory/);
    expect(await tree(join(t.root, NAME))).toEqual(['inside']);

    await rm(paths.versionsDir, { recursive: true });
    const r = await createAgent(agentOpts()).syncOnce();
    expect(r.names[0]).toMatchObject({ outcome: 'failed', message: expect.stringContaining('is a directory') });
    expect(await tree(join(t.root, 'boot'))).toEqual(['centos-AbCd-vmlinuz/', 'centos-AbCd-vmlinuz/inside']);
  });

  it('refuses a foreign symlink at <name> and leaves it pointing where it did', async () => {
    await mkdir(join(t.root, 'boot'));
    await symlink('../custom/vmlinuz', join(t.root, NAME));
    const paths = await prepared();
    await expect(swapLink(t.root, paths)).rejects.toThrow(/not ours/);
    expect(await readlink(join(t.root, NAME))).toBe('../custom/vmlinuz');
  });

  it('replaces a link of ours that points to another version', async () => {
    const paths = await prepared('k1');
    await swapLink(t.root, paths);
    const p2 = await prepared('k2');
    expect(await swapLink(t.root, p2)).toBe('replaced');
    expect(await readFile(p2.link, 'utf8')).toBe('k2');
  });
});
