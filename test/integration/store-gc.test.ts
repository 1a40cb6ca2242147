/**
 * `pxecache gc` from the built CLI on the file store and on S3 (the shared Ceph RGW), with history built by
 * `pxecache serve --keep-versions 2` fetching respins from a real upstream: what falls out of every name's kept history goes, after
 * the grace; the current and previous versions, a pinned and a held version, bytes two names share and a boot
 * config's bytes stay; an orphan data object waits its grace; an agent still syncs a TFTP root afterwards.
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexBlob, putSmallBlob } from '../../src/core/blobs.js';
import { keys } from '../../src/core/object-keys.js';
import { latestPointer } from '../../src/core/pointers.js';
import type { ConfigRecord, PointerRecord, StatusRecord, VersionEntry } from '../../src/core/records.js';
import { versionOf } from '../../src/core/records.js';
import { createFileStore } from '../../src/storage/file-store.js';
import { getJson, listAll, putJson, type ObjectStore } from '../../src/storage/object-store.js';
import { createS3Store } from '../../src/storage/s3-store.js';
import { createTestBucket, rgwClient, rgwEnv } from '../helpers/rgw.js';
import { startServeProcess } from '../helpers/serve-process.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';

const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

interface Target {
  readonly url: string;
  readonly env: Record<string, string>;
  readonly store: ObjectStore;
  cleanup(): Promise<void>;
}

const targets: Record<string, () => Promise<Target>> = {
  file: async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pxecache-gc-store-'));
    return {
      url: `file:${dir}`,
      env: {},
      store: createFileStore({ root: dir }),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  },
  s3: async () => {
    const client = rgwClient();
    const { bucket, cleanup } = await createTestBucket(client);
    const e = rgwEnv();
    return {
      url: `s3://${bucket}/gc/`,
      env: {
        AWS_ENDPOINT_URL_S3: e.AWS_ENDPOINT_URL_S3,
        AWS_REGION: e.AWS_REGION,
        AWS_ACCESS_KEY_ID: e.AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY: e.AWS_SECRET_ACCESS_KEY,
      },
      store: createS3Store({ bucket, prefix: 'gc/', client }),
      cleanup: async () => {
        await cleanup();
        client.destroy();
      },
    };
  },
};

function cli(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function storedKeys(store: ObjectStore): Promise<string[]> {
  const out: string[] = [];
  for await (const key of listAll(store, '')) if (/^(blobs|data|names|sites|gc)\//.test(key)) out.push(key);
  return out.sort();
}

describe.each(Object.keys(targets))('pxecache gc on the %s store', (kind) => {
  let t: Target;
  let upstream: Upstream;
  let dir: string;
  let fetcher: string;
  const bytes = (label: string) => `${label} `.repeat(500 + label.length);
  /** sha256 of each label's bytes, as fetch reported it. */
  const shas = new Map<string, string>();
  const gc = (...args: string[]) => cli(['gc', '--store', t.url, ...args], t.env);

  /** A respin: upstream's file changes, and the fetcher (`serve --keep-versions 2`) revalidates it. */
  async function fetchAs(prefix: string, path: string, label: string): Promise<void> {
    upstream.set(path, bytes(label));
    const response = await fetch(`${fetcher}/api/v1/fetch?wait=30`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prefix, path: upstream.url(path) }),
    });
    const status = (await response.json()) as { sha256: string; state: string };
    expect(status.state).toBe('ready');
    shas.set(label, status.sha256);
  }
  const sha = (label: string) => shas.get(label) as string;
  const dataKey = async (label: string) =>
    ((await getJson<{ key: string }>(t.store, keys.blob(sha(label)))) as { key: string }).key;
  /** Lines of one kind ("would delete", "deleted", "waiting") as `blob <sha256>` / `data <key>`. */
  const listed = (stdout: string, verb: string) =>
    stdout
      .split('\n')
      .filter((l) => l.startsWith(`${verb} `))
      .map((l) => l.slice(12).trim().split(' ').slice(0, 2).join(' '))
      .sort();

  beforeAll(async () => {
    t = await (targets[kind] as () => Promise<Target>)();
    upstream = await createUpstream();
    dir = await mkdtemp(join(tmpdir(), 'pxecache-gc-'));
    const serve = await startServeProcess(t.url, ['--keep-versions', '2', '--gc-interval', '0'], t.env);
    fetcher = serve.url;
    try {
      await buildHistory();
    } finally {
      await serve.stop();
    }
  }, 120_000);

  async function buildHistory(): Promise<void> {
    // boot/a: five respins, keeping a5 and a4; a1 is also boot/b's, so only a2 and a3 fall out.
    for (const label of ['a1', 'a2', 'a3', 'a4', 'a5']) await fetchAs('boot/a', '/a/vmlinuz', label);
    await fetchAs('boot/b', '/b/vmlinuz', 'a1');
    // boot/c: c1 falls out of the history, but an operator pinned it.
    for (const label of ['c1', 'c2', 'c3']) await fetchAs('boot/c', '/c/vmlinuz', label);
    // boot/d: d1 and d2 kept, and d3 held (upstream's newer bytes, stored while pinned).
    for (const label of ['d1', 'd2']) await fetchAs('boot/d', '/d/initrd.img', label);
    // boot/e: e1 falls out.
    for (const label of ['e1', 'e2', 'e3']) await fetchAs('boot/e', '/e/vmlinuz', label);

    const c = (await latestPointer(t.store, 'boot/c-vmlinuz')) as PointerRecord;
    const pin = { version: versionOf(sha('c1')), at: new Date().toISOString(), reason: 'pin' as const };
    await putJson(t.store, keys.pointer(c.name, c.generation + 1), { ...c, generation: c.generation + 1, pinned: pin });
    const held = await ingest(t.store, bytes('d3'));
    shas.set('d3', held.sha256);
    const status = (await getJson<StatusRecord>(t.store, keys.status('boot/d-initrd.img'))) as StatusRecord;
    await putJson(t.store, keys.status('boot/d-initrd.img'), {
      ...status,
      held: { ...held, etag: '"d3"', lastModified: null },
    });
    const menu = new TextEncoder().encode('DEFAULT local\n');
    const menuSha = createHash('sha256').update(menu).digest('hex');
    const menuKey = await putSmallBlob(t.store, menu, menuSha, () => randomUUID());
    shas.set('menu', menuSha);
    const config: ConfigRecord = {
      site: 'default',
      path: 'pxelinux.cfg/default',
      deleted: false,
      sha256: menuSha,
      size: menu.byteLength,
      key: menuKey,
      updatedAt: new Date().toISOString(),
      variant: 'PXELinux',
      mac: null,
      params: {},
    };
    await putJson(t.store, keys.config('default', config.path), config);
  }

  afterAll(async () => {
    await upstream?.close();
    await t?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('--dry-run lists exactly what fell out of every kept history, and changes nothing', async () => {
    const before = await storedKeys(t.store);
    // A dead writer's temp, which opening a file store for work removes: a dry run leaves it too.
    const temp = kind === 'file' ? join(t.url.slice('file:'.length), 'data', '.tmp-dead-writer') : null;
    if (temp) {
      await writeFile(temp, 'x');
      await utimes(temp, new Date(0), new Date(0));
    }
    const dropped = ['a2', 'a3', 'e1'];
    const expected = [
      ...dropped.map((l) => `blob ${sha(l)}`),
      ...(await Promise.all(dropped.map(async (l) => `data ${await dataKey(l)}`))),
    ].sort();
    const now = await gc('--dry-run', '--grace', '0');
    expect(now.code, now.stderr).toBe(0);
    expect(listed(now.stdout, 'would delete')).toEqual(expected);
    expect(now.stdout).toMatch(/would delete 6 objects \(3 blob indexes, 3 data objects, \d+ bytes\).*dry run/);
    const later = await gc('--dry-run');
    expect(later.code, later.stderr).toBe(0);
    expect(listed(later.stdout, 'would delete')).toEqual([]);
    expect(listed(later.stdout, 'waiting')).toEqual(dropped.map((l) => `blob ${sha(l)}`).sort());
    expect(await storedKeys(t.store)).toEqual(before);
    if (temp) expect((await stat(temp)).size).toBe(1);
  }, 60_000);

  it('with the default grace deletes nothing and records marks; with --grace 0 deletes them, nothing kept', async () => {
    const before = await storedKeys(t.store);
    const first = await gc();
    expect(first.code, first.stderr).toBe(0);
    expect(listed(first.stdout, 'deleted')).toEqual([]);
    expect(first.stdout).toMatch(/unreferenced since \S+ \(\d+s\), goes after /);
    expect(await storedKeys(t.store)).toEqual([...before, keys.gcMarks].sort());
    const marks = await getJson<{ marks: Record<string, unknown> }>(t.store, keys.gcMarks);
    expect(Object.keys(marks?.marks ?? {}).sort()).toEqual(['a2', 'a3', 'e1'].map((l) => keys.blob(sha(l))).sort());

    const goneData = await Promise.all(['a2', 'a3', 'e1'].map(dataKey));
    const second = await gc('--grace', '0');
    expect(second.code, second.stderr).toBe(0);
    expect(listed(second.stdout, 'deleted')).toHaveLength(6);
    for (const label of ['a2', 'a3', 'e1']) expect(await t.store.head(keys.blob(sha(label)))).toBeNull();
    for (const key of goneData) expect(await t.store.head(key)).toBeNull();

    // Current and previous of every name, a1 (boot/b's), the pinned c1, the held d3 and the menu: index and bytes.
    const kept = ['a1', 'a4', 'a5', 'c1', 'c2', 'c3', 'd1', 'd2', 'd3', 'e2', 'e3', 'menu'];
    for (const label of kept) {
      const index = await getJson<{ key: string; size: number }>(t.store, keys.blob(sha(label)));
      expect(index, label).not.toBeNull();
      expect((await t.store.head(index?.key ?? ''))?.size, label).toBe(index?.size);
    }
    for (const name of ['boot/a-vmlinuz', 'boot/b-vmlinuz', 'boot/c-vmlinuz', 'boot/d-initrd.img', 'boot/e-vmlinuz']) {
      const record = (await latestPointer(t.store, name)) as PointerRecord;
      for (const v of record.versions) expect(await t.store.head(v.key), `${name} ${v.version}`).not.toBeNull();
    }
    expect(await getJson(t.store, keys.gcMarks)).toEqual({ marks: {} });
  }, 60_000);

  it('deletes an orphan data object (a crashed ingest) only once it has waited the grace', async () => {
    const orphan = keys.data(randomUUID());
    await t.store.put(orphan, 'bytes of an ingest that never indexed them');
    const first = await gc('--grace', '2');
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`waiting      data ${orphan} (42 bytes), orphan data (no index, no record) since`);
    expect(await t.store.head(orphan)).not.toBeNull();
    await new Promise((r) => setTimeout(r, 2100));
    const second = await gc('--grace', '2');
    expect(second.code, second.stderr).toBe(0);
    expect(listed(second.stdout, 'deleted')).toEqual([`data ${orphan}`]);
    expect(second.stdout).toContain('42 bytes); 0 waiting');
    expect(await t.store.head(orphan)).toBeNull();
  }, 60_000);

  it('leaves a store an agent syncs a TFTP root from', async () => {
    const root = join(dir, 'tftp');
    const { code, stdout, stderr } = await cli(['agent', '--once', '--source', t.url, '--tftp-root', root], t.env);
    expect(code, `${stdout}${stderr}`).toBe(0);
    expect(stdout).toContain('in sync: 5 names');
    expect(await readFile(join(root, 'boot/a-vmlinuz'), 'utf8')).toBe(bytes('a5'));
    expect(await readFile(join(root, 'boot/b-vmlinuz'), 'utf8')).toBe(bytes('a1'));
    expect(await readFile(join(root, 'boot/e-vmlinuz'), 'utf8')).toBe(bytes('e3'));
    expect(await readFile(join(root, 'pxelinux.cfg/default'), 'utf8')).toBe('DEFAULT local\n');
  }, 60_000);

  it('serve --gc-interval runs it on a timer', async () => {
    const orphan = keys.data(randomUUID());
    await t.store.put(orphan, 'another crashed ingest');
    const serve = await startServeProcess(t.url, ['--gc-interval', '1', '--gc-grace', '0'], t.env);
    try {
      await waitFor(
        'the orphan deleted by the timer',
        async () => {
          const head = await t.store.head(orphan);
          return { done: head === null, value: head };
        },
        { timeoutMs: 15_000, intervalMs: 200 },
      );
      await waitFor('the run logged', async () => {
        const line = serve.logs.find((l) => l.msg === 'store gc' && l['deleted'] === 1);
        return { done: line !== undefined, value: serve.output() };
      });
    } finally {
      await serve.stop();
    }
  }, 60_000);

  it('refuses bad usage with exit 2 naming the flag, and fails (exit 1) on a damaged record, deleting nothing', async () => {
    const bad = await gc('--grace', '-1');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--grace:');
    const unknown = await gc('--dry', '1');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--dry: unknown option');
    const missing = await cli(['gc', '--store', `file:${join(tmpdir(), 'pxecache-no-such-store')}`], t.env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--store: ');
    expect(missing.stderr).toContain('is not a directory');

    const orphan = keys.data(randomUUID());
    await t.store.put(orphan, 'x');
    await t.store.put(keys.pointer('boot/z-vmlinuz', 1), '{ not json');
    const failed = await gc('--grace', '0');
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('names/boot/z-vmlinuz/~/');
    expect(await t.store.head(orphan)).not.toBeNull();
    await t.store.delete(keys.pointer('boot/z-vmlinuz', 1));
  }, 60_000);
});

async function ingest(store: ObjectStore, content: string): Promise<VersionEntry> {
  const sha256 = createHash('sha256').update(content).digest('hex');
  const dataKey = keys.data(randomUUID());
  await store.put(dataKey, content);
  const key = await indexBlob(store, sha256, content.length, dataKey);
  return {
    version: versionOf(sha256),
    sha256,
    size: content.length,
    url: 'http://m/d/initrd.img',
    fetchedAt: new Date().toISOString(),
    basename: 'initrd.img',
    key,
  };
}
