import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/core/errors.js';
import { readAll } from '../../src/storage/object-store.js';
import { cleanStaleTemps, createFileStore } from '../../src/storage/file-store.js';
import { describeObjectStore } from './conformance.js';

const BUILT_DRIVER = new URL('../../dist/storage/file-store.js', import.meta.url);

describeObjectStore('file', async () => {
  const root = await mkdtemp(join(tmpdir(), 'pxecache-file-store-'));
  return { store: createFileStore({ root }), cleanup: () => rm(root, { recursive: true, force: true }) };
});

/** Every path under `dir`, relative, sorted; directories end with `/`. */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.map((e) => join(e.parentPath, e.name).slice(dir.length + 1) + (e.isDirectory() ? '/' : '')).sort();
}

describe('file store', () => {
  let parent: string;
  let root: string;
  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'pxecache-file-store-'));
    root = join(parent, 'root');
    await mkdir(root);
  });
  afterEach(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  it('stores each key as a file at its path under the root', async () => {
    const store = createFileStore({ root });
    await store.put('blobs/ab/cd', 'bytes');
    expect(await readFile(join(root, 'blobs', 'ab', 'cd'), 'utf8')).toBe('bytes');
    expect(await tree(root)).toEqual(['blobs/', 'blobs/ab/', 'blobs/ab/cd']);
  });

  it('rejects keys that could leave the root and creates nothing outside it', async () => {
    const store = createFileStore({ root });
    const bad = ['../x', 'a/../../x', '/abs', `/${parent}/x`, 'a//b', 'a/./b', 'a\\b', '..\\x', 'a\0b', 'a/'];
    for (const key of bad) {
      const label = JSON.stringify(key);
      await expect(store.put(key, 'escaped'), label).rejects.toBeInstanceOf(StorageError);
      await expect(store.put(key, 'escaped', { ifNoneMatch: '*' }), label).rejects.toBeInstanceOf(StorageError);
      await expect(store.get(key), label).rejects.toBeInstanceOf(StorageError);
      await expect(store.head(key), label).rejects.toBeInstanceOf(StorageError);
      await expect(store.delete(key), label).rejects.toBeInstanceOf(StorageError);
    }
    await expect(store.put('../x', 'escaped')).rejects.toThrow('[store:file] PUT ../x: invalid key');
    expect(await tree(parent)).toEqual(['root/']);
  });

  it('reports I/O failures as StorageError naming driver, operation and key', async () => {
    // Unlike memory and S3, a file cannot also be a directory: object keys must never nest under one another.
    const store = createFileStore({ root });
    await store.put('n/obj', 'x');
    await expect(store.put('n/obj/below', 'y')).rejects.toThrow(/^\[store:file\] PUT n\/obj\/below: E(EXIST|NOTDIR)/);
    expect(await store.get('n/obj/below')).toBeNull();
  });

  it('leaves no .tmp- file behind when a put fails', async () => {
    const store = createFileStore({ root });
    const boom = new Error('boom');
    async function* body(): AsyncIterable<Uint8Array> {
      // Several full 1 MiB writes reach the temp file before the failure.
      for (let i = 0; i < 5; i++) yield new Uint8Array(700_000);
      throw boom;
    }
    await expect(store.put('k/obj', body())).rejects.toBe(boom);
    await store.put('k/taken', 'x');
    await expect(store.put('k/taken', body(), { ifNoneMatch: '*' })).rejects.toBe(boom);
    await expect(store.put('k/taken', 'y', { ifNoneMatch: '*' })).rejects.toThrow('conditional write');
    expect(await tree(root)).toEqual(['k/', 'k/taken']);
  });

  it('lists neither temp files nor directories', async () => {
    const store = createFileStore({ root });
    await store.put('heads/a', 'x');
    await mkdir(join(root, 'heads', 'empty'));
    await writeFile(join(root, 'heads', '.tmp-inflight'), 'partial');
    expect((await store.list('heads/')).keys).toEqual(['heads/a']);
    expect((await store.list('heads/.tmp')).keys).toEqual([]);
  });

  it('cleanStaleTemps removes old temp files only', async () => {
    const old = new Date(Date.now() - 2 * 3600_000);
    await mkdir(join(root, 'a', 'b'), { recursive: true });
    for (const path of ['.tmp-old1', 'a/b/.tmp-old2', 'a/.tmp-new', 'a/b/kept-old']) {
      await writeFile(join(root, path), 'x');
      if (path.includes('old')) await utimes(join(root, path), old, old);
    }
    expect(await cleanStaleTemps(root, 3600_000)).toBe(2);
    expect(await tree(root)).toEqual(['a/', 'a/.tmp-new', 'a/b/', 'a/b/kept-old']);
    expect(await cleanStaleTemps(join(parent, 'missing'), 0)).toBe(0);
  });

  it('get keeps reading the version it opened while an overwrite lands', async () => {
    const store = createFileStore({ root });
    await store.put('v/obj', 'old bytes');
    const opened = await store.get('v/obj');
    const next = await store.put('v/obj', 'new');
    expect(opened?.size).toBe(9);
    expect(opened?.etag).not.toBe(next.etag);
    expect(new TextDecoder().decode(await readAll(opened!.body))).toBe('old bytes');
  });

  it('closes the descriptor of a body ended before or during reading', async () => {
    const store = createFileStore({ root });
    await store.put('fd/obj', new Uint8Array(3 << 20));
    const openFds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;
    const settled = async (expected: number): Promise<number> => {
      for (let i = 0; i < 100 && (await openFds()) !== expected; i++) await new Promise((r) => setTimeout(r, 5));
      return openFds();
    };
    const before = await openFds();
    const unread = await store.get('fd/obj');
    expect(await openFds()).toBe(before + 1);
    await unread!.body[Symbol.asyncIterator]().return?.();
    expect(await settled(before)).toBe(before);
    for await (const _chunk of (await store.get('fd/obj'))!.body) break;
    expect(await settled(before)).toBe(before);
  });

  it('a second store on the same root sees the same objects and etags', async () => {
    const meta = await createFileStore({ root }).put('s/obj', 'shared');
    expect(await createFileStore({ root }).head('s/obj')).toEqual(meta);
  });

  it('create-only is atomic across two processes', async () => {
    // The child imports the built driver: plain node cannot load TypeScript (`npm test` builds first).
    expect(existsSync(BUILT_DRIVER), `${fileURLToPath(BUILT_DRIVER)} missing: run npm run build`).toBe(true);
    const script = join(parent, 'creator.mjs');
    await writeFile(
      script,
      `import { createFileStore } from ${JSON.stringify(BUILT_DRIVER.href)};
const [root, tag] = process.argv.slice(2);
const store = createFileStore({ root });
process.stdout.write('ready\\n');
await new Promise((go) => process.stdin.once('data', go));
const results = await Promise.allSettled(
  Array.from({ length: 50 }, (_, i) => store.put('race/k' + i, tag, { ifNoneMatch: '*' })),
);
const won = [];
for (const [i, r] of results.entries()) {
  if (r.status === 'fulfilled') won.push(i);
  else if (r.reason?.code !== 'precondition-failed') throw r.reason;
}
process.stdout.write(JSON.stringify(won) + '\\n');
`,
    );
    const children = ['A', 'B'].map((tag) => {
      const child = spawn(process.execPath, [script, root, tag], {
        stdio: ['pipe', 'pipe', 'inherit'],
        // All 50 creates in flight at once (libuv's default pool is 4 threads), so the two processes' writes overlap.
        env: { ...process.env, UV_THREADPOOL_SIZE: '64' },
      });
      let out = '';
      const ready = new Promise<void>((resolve) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.startsWith('ready\n')) resolve();
        });
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      return { tag, child, ready, exited, output: () => out };
    });
    // Both processes are loaded and waiting before either starts, so their puts really overlap.
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.child.stdin.end('go\n');
    expect(await Promise.all(children.map((c) => c.exited))).toEqual([0, 0]);

    const store = createFileStore({ root });
    const wins = children.map((c) => JSON.parse(c.output().split('\n')[1] ?? '') as number[]);
    expect(wins.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    for (const [n, won] of wins.entries()) {
      for (const i of won) expect(await readFile(join(root, 'race', `k${i}`), 'utf8')).toBe(children[n]!.tag);
    }
    expect((await store.list('race/')).keys).toHaveLength(50);
    expect((await tree(root)).filter((p) => p.includes('.tmp-'))).toEqual([]);
  });
});
