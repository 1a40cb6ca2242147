/**
 * The edge contract end to end (DESIGN.md "Edge layout (TFTP root), must hold"): `pxecache serve --tftp-root` and a
 * separate `pxecache agent` maintain TFTP roots that a real tftpd-hpa serves chrooted (`-s`), read by the real
 * tftp-hpa client the way PXE firmware reads them. Needs root, tftpd-hpa and tftp-hpa (CI installs them: this suite
 * fails, never skips, without them) and the built CLI (`npm run build`).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServeProcess, type ServeProcess } from '../helpers/serve-process.js';
import { assertTftpTools, startTftpd, tftpFetch, type Tftpd } from '../helpers/tftp.js';
import { startReaders } from '../helpers/tftp-readers.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { fetchBootFile as postFetchBootFile, overHttp } from '../helpers/api.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const KiB = 1024;
const KERNEL_URL_PATH = '/images/pxeboot/vmlinuz';
const OLD_KERNEL_URL_PATH = '/old/images/pxeboot/vmlinuz';
const NAME = 'boot/t-vmlinuz';
const RESPINS = 20;

interface FileStatus {
  readonly state: string;
  readonly version: string | null;
  readonly sha256: string | null;
  readonly generation: number;
  readonly error: { readonly code: string; readonly message: string } | null;
  readonly versions: readonly { readonly version: string; readonly sha256: string }[];
}

interface CatalogEntry {
  readonly name: string;
  readonly version: string;
  readonly sha256: string;
  readonly basename: string;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The link target DESIGN.md prescribes: relative, next to the link, `<base>-orig/<version>/<url basename>`. */
const linkTarget = (name: string, version: string, basename = 'vmlinuz') =>
  `${name.slice(name.lastIndexOf('/') + 1)}-orig/${version}/${basename}`;

/** Files "the old smart proxy" left in the root before pxecache ran; only boot/old-vmlinuz is ever fetched. */
const OLD_FILES: Record<string, Buffer> = {
  'pxelinux.0': randomBytes(42 * KiB),
  'pxelinux.cfg/default': Buffer.from('DEFAULT menu\nPROMPT 0\nLABEL local\n  LOCALBOOT 0\n'),
  'boot/old-vmlinuz': randomBytes(300 * KiB),
};
const BYSTANDERS = ['pxelinux.0', 'pxelinux.cfg/default'];

let base: string;
let root: string;
let upstream: Upstream;
let serve: ServeProcess;
let tftpd: Tftpd;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  assertTftpTools();
  base = await mkdtemp(join(tmpdir(), 'pxecache-e2e-tftp-'));
  root = join(base, 'tftpboot');
  for (const [path, bytes] of Object.entries(OLD_FILES)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), bytes, { mode: 0o644 });
  }
  upstream = await createUpstream();
  cleanups.push(() => upstream.close());
  const agentFlags = ['--tftp-root', root, '--agent-interval', '0.2'];
  serve = await startServeProcess(join(base, 'store'), ['--host', '127.0.0.1', ...agentFlags]);
  cleanups.push(() => serve.stop());
  tftpd = await startTftpd(root);
  cleanups.push(() => tftpd.stop());
}, 60_000);

afterAll(async () => {
  const errors: unknown[] = [];
  for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => errors.push(err));
  if (base) await rm(base, { recursive: true, force: true });
  if (errors.length) throw new AggregateError(errors, 'e2e cleanup failed');
});

/** Polls `probe` until it returns `{ ok }`; otherwise it returns what it sees, quoted when the deadline passes. */
async function waitFor<T>(what: string, probe: () => Promise<{ ok: T } | string>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (typeof got !== 'string') return got.ok;
    if (Date.now() > deadline) {
      const log = serve.output().split('\n').slice(-15).join('\n');
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${got}\nserve log tail:\n${log}`,
      );
    }
    await sleep(50);
  }
}

async function getJson<T>(path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${serve.url}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as T };
}

/** Foreman's call, as ProxyAPI::TFTP sends it: a form POST; smart-proxy answers 200 with an empty body. */
async function fetchBootFile(prefix: string, path: string): Promise<void> {
  const res = await postFetchBootFile(overHttp(serve.url), { prefix, path });
  expect({ status: res.status, body: await res.text() }).toEqual({ status: 200, body: '' });
}

async function waitReady(name: string, sha: string): Promise<FileStatus & { version: string }> {
  return waitFor(`${name} ready with sha256 ${sha}`, async () => {
    const { status, body } = await getJson<FileStatus>(`/api/v1/files/${name}`);
    if (status !== 200) return `HTTP ${status}`;
    // The `fetching` record exists before the 200, so a final state seen now belongs to this fetch.
    if (body.state === 'failed') {
      throw new Error(`fetch of ${name} failed: ${JSON.stringify(body.error)}`);
    }
    if (body.state === 'ready' && body.sha256 !== sha)
      throw new Error(`${name} is ready with sha256 ${body.sha256}, upstream serves ${sha}`);
    return body.state === 'ready' && body.version ? { ok: { ...body, version: body.version } } : body.state;
  });
}

async function waitLink(dir: string, name: string, want: string): Promise<void> {
  await waitFor(`${dir}/${name} -> ${want}`, async () => {
    const got = await readlink(join(dir, name)).catch((err: NodeJS.ErrnoException) => `<${err.code}>`);
    return got === want ? { ok: got } : `link reads ${JSON.stringify(got)}`;
  });
}

/** Respin upstream, tell pxecache, wait until the edge link points at the new version. */
async function publish(prefix: string, urlPath: string, bytes: Buffer): Promise<FileStatus & { version: string }> {
  const name = `${prefix}-${urlPath.slice(urlPath.lastIndexOf('/') + 1)}`;
  upstream.set(urlPath, bytes);
  await fetchBootFile(prefix, upstream.url(urlPath));
  const status = await waitReady(name, sha256(bytes));
  await waitLink(root, name, linkTarget(name, status.version));
  return status;
}

/** Every path below `dir`, relative, by lstat kind; symlinks are reported, never followed. */
async function walk(dir: string, rel = ''): Promise<{ path: string; kind: 'dir' | 'file' | 'symlink' | 'other' }[]> {
  const out: { path: string; kind: 'dir' | 'file' | 'symlink' | 'other' }[] = [];
  for (const d of await readdir(join(dir, rel), { withFileTypes: true })) {
    const path = rel ? `${rel}/${d.name}` : d.name;
    const kind = d.isDirectory() ? 'dir' : d.isFile() ? 'file' : d.isSymbolicLink() ? 'symlink' : 'other';
    out.push({ path, kind });
    if (kind === 'dir') out.push(...(await walk(dir, path)));
  }
  return out;
}

const tempsUnder = async (dir: string) =>
  (await walk(dir)).filter((e) => e.path.split('/').pop()?.startsWith('.pxecache-tmp-')).map((e) => e.path);

function runCli(args: readonly string[], timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pxecache ${args.join(' ')} did not exit within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('test harness', () => {
  // Guards the tooling the suite relies on: if tftpGet could not report a failed read, the respin test could not fail.
  it('reports failed TFTP reads, and tftpd-hpa -s follows relative links but refuses absolute ones', async () => {
    const scratch = await mkdtemp(join(tmpdir(), 'pxecache-e2e-harness-'));
    cleanups.push(() => rm(scratch, { recursive: true, force: true }));
    const bytes = randomBytes(100 * KiB);
    await mkdir(join(scratch, 'boot/k-orig/v1'), { recursive: true });
    await writeFile(join(scratch, 'boot/k-orig/v1/vmlinuz'), bytes, { mode: 0o644 });
    await symlink('k-orig/v1/vmlinuz', join(scratch, 'boot/relative'));
    await symlink(join(scratch, 'boot/k-orig/v1/vmlinuz'), join(scratch, 'boot/absolute'));
    const server = await startTftpd(scratch);
    try {
      const relative = await tftpFetch(server.port, 'boot/relative');
      expect(relative.ok ? sha256(relative.bytes) : relative.reason).toBe(sha256(bytes));
      const absolute = await tftpFetch(server.port, 'boot/absolute');
      expect(absolute.ok ? 'served' : absolute.reason).toMatch(/Error code/);
      const missing = await tftpFetch(server.port, 'boot/missing');
      expect(missing.ok ? 'served' : missing.reason).toMatch(/Error code 1/);
    } finally {
      await server.stop();
    }
  });
});

describe('pxecache serve --tftp-root behind tftpd-hpa', () => {
  it('fetch_boot_file publishes a relative link into <name>-orig/<version>/ that tftpd-hpa serves', async () => {
    const bytes = randomBytes(512 * KiB);
    const status = await publish('boot/t', KERNEL_URL_PATH, bytes);

    const link = await lstat(join(root, NAME));
    expect(link.isSymbolicLink()).toBe(true);
    expect(await readlink(join(root, NAME))).toBe(`t-vmlinuz-orig/${status.version}/vmlinuz`);
    const file = await lstat(join(root, 'boot/t-vmlinuz-orig', status.version, 'vmlinuz'));
    expect(file.isFile()).toBe(true);
    expect(file.size).toBe(bytes.byteLength);
    const got = await tftpFetch(tftpd.port, NAME);
    expect(got.ok ? sha256(got.bytes) : got.reason).toBe(sha256(bytes));
  });

  it('serves only complete, published versions to two TFTP readers while upstream respins 20 times', async () => {
    // Random sizes, with runs of equal sizes: a file rewritten in place or two versions mixed would keep the size
    // and only the hash would tell.
    const sizes = Array.from({ length: RESPINS + 1 }, () => randomInt(256 * KiB, 1024 * KiB + 1));
    for (const [from, to] of [
      [0, 1],
      [4, 7],
      [12, 14],
    ] as const) {
      for (let i = from + 1; i <= to; i++) sizes[i] = sizes[from] as number;
    }
    /** sha256 of every version upstream ever served, in publication order; index = epoch of the readers. */
    const history: string[] = [];
    const first = randomBytes(sizes[0] as number);
    history.push(sha256(first));
    await publish('boot/t', KERNEL_URL_PATH, first);

    const readers = startReaders({
      port: tftpd.port,
      remote: NAME,
      readers: 2,
      check(bytes, epoch) {
        const sha = sha256(bytes);
        const at = history.indexOf(sha);
        // Pushed before upstream serves it, so a version a read can legitimately see is always in `history`.
        if (at === -1) return `${bytes.byteLength} bytes hashing to ${sha}: not a version upstream ever served`;
        if (at < epoch) return `version #${at} read after the link had moved to #${epoch} (stale)`;
        return null;
      },
    });
    try {
      await readers.waitForFreshReads('the first publication');
      for (let i = 1; i <= RESPINS; i++) {
        const bytes = randomBytes(sizes[i] as number);
        history.push(sha256(bytes));
        await publish('boot/t', KERNEL_URL_PATH, bytes);
        readers.setEpoch(i);
        // Every version is read by both clients before the next respin, so reads overlap every swap and GC.
        await readers.waitForFreshReads(`respin ${i}`);
      }
    } finally {
      await readers.stop();
    }
    console.log(
      `tftp-serve e2e: ${readers.reads()} TFTP reads of ${NAME} checked across ${history.length} versions, ` +
        `${readers.failures.length} failed, ${readers.problems.length} wrong`,
    );
    expect(readers.failures).toEqual([]);
    expect(readers.problems).toEqual([]);
    expect(readers.reads()).toBeGreaterThanOrEqual(2 * (RESPINS + 1));

    // GC: the current and the previous version stay, anything older goes (a third may linger by catalog order).
    const { body: status } = await getJson<FileStatus>(`/api/v1/files/${NAME}`);
    expect(status.versions.slice(0, 2).map((v) => v.sha256)).toEqual([history[RESPINS], history[RESPINS - 1]]);
    const kept = status.versions.slice(0, 3).map((v) => v.version);
    const versionsDir = join(root, 'boot/t-vmlinuz-orig');
    const onDisk = await waitFor(`GC of ${versionsDir} down to the kept versions ${kept.join(', ')}`, async () => {
      const entries = await readdir(versionsDir);
      return entries.every((v) => kept.includes(v)) ? { ok: entries } : `it holds ${entries.join(', ')}`;
    });
    expect(onDisk).toContain(kept[0]);
    expect(onDisk).toContain(kept[1]);
    for (const version of onDisk) {
      expect(await readdir(join(versionsDir, version))).toEqual(['vmlinuz']);
      const bytes = await readFile(join(versionsDir, version, 'vmlinuz'));
      expect(sha256(bytes)).toBe(status.versions.find((v) => v.version === version)?.sha256);
    }
    expect(await tempsUnder(root)).toEqual([]);
  }, 300_000);

  it('a separate `pxecache agent --once` builds the same layout in a second root; a second run is a no-op', async () => {
    const base2 = await mkdtemp(join(tmpdir(), 'pxecache-e2e-tftp2-'));
    cleanups.push(() => rm(base2, { recursive: true, force: true }));
    const root2 = join(base2, 'tftpboot');
    await mkdir(root2);
    const tftpd2 = await startTftpd(root2);
    cleanups.push(() => tftpd2.stop());
    const agentArgs = ['agent', '--source', serve.url, '--tftp-root', root2, '--once'];

    const first = await runCli(agentArgs);
    expect(first.code, first.output).toBe(0);
    const { body: catalog } = await getJson<{ entries: CatalogEntry[] }>('/api/v1/files');
    const kernel = catalog.entries.find((e) => e.name === NAME);
    expect(kernel, JSON.stringify(catalog)).toBeDefined();
    for (const entry of catalog.entries) {
      const want = linkTarget(entry.name, entry.version, entry.basename);
      expect(await readlink(join(root2, entry.name))).toBe(want);
      expect(await readlink(join(root, entry.name))).toBe(want);
      expect(sha256(await readFile(join(root2, dirname(entry.name), want)))).toBe(entry.sha256);
    }
    const got = await tftpFetch(tftpd2.port, NAME);
    expect(got.ok ? sha256(got.bytes) : got.reason).toBe(kernel?.sha256);

    const versionFile = join(root2, 'boot', linkTarget(NAME, kernel?.version ?? ''));
    const [fileBefore, linkBefore] = [await lstat(versionFile), await lstat(join(root2, NAME))];
    const second = await runCli(agentArgs);
    expect(second.code, second.output).toBe(0);
    expect((await lstat(versionFile)).ino).toBe(fileBefore.ino);
    expect((await lstat(join(root2, NAME))).ino).toBe(linkBefore.ino);
    expect(await tempsUnder(root2)).toEqual([]);
  }, 120_000);

  it('replaces a plain file left by the old smart proxy without a gap, and touches nothing else', async () => {
    const oldPath = join(root, 'boot/old-vmlinuz');
    const oldBytes = OLD_FILES['boot/old-vmlinuz'] as Buffer;
    expect((await lstat(oldPath)).isFile()).toBe(true);
    expect(sha256(await readFile(oldPath))).toBe(sha256(oldBytes)); // untouched until its name is fetched
    const before = new Map(await Promise.all(BYSTANDERS.map(async (p) => [p, await lstat(join(root, p))] as const)));

    const bytes = randomBytes(400 * KiB);
    const readers = startReaders({
      port: tftpd.port,
      remote: 'boot/old-vmlinuz',
      readers: 2,
      check(got, epoch) {
        const sha = sha256(got);
        if (sha === sha256(bytes)) return null;
        if (sha === sha256(oldBytes)) return epoch === 0 ? null : 'the old plain file, read after the link replaced it';
        return `${got.byteLength} bytes hashing to ${sha}: neither the old file nor the new version`;
      },
    });
    let status: FileStatus & { version: string };
    try {
      await readers.waitForFreshReads('the start');
      status = await publish('boot/old', OLD_KERNEL_URL_PATH, bytes);
      readers.setEpoch(1);
      await readers.waitForFreshReads('the link replaced the plain file');
    } finally {
      await readers.stop();
    }
    expect(readers.failures).toEqual([]);
    expect(readers.problems).toEqual([]);
    expect((await lstat(oldPath)).isSymbolicLink()).toBe(true);
    expect(await readlink(oldPath)).toBe(`old-vmlinuz-orig/${status.version}/vmlinuz`);

    for (const path of BYSTANDERS) {
      const st = await lstat(join(root, path));
      expect({ path, ino: st.ino, mtime: st.mtimeMs, size: st.size }).toEqual({
        path,
        ino: before.get(path)?.ino,
        mtime: before.get(path)?.mtimeMs,
        size: before.get(path)?.size,
      });
      expect(sha256(await readFile(join(root, path)))).toBe(sha256(OLD_FILES[path] as Buffer));
    }
    const pxelinux = await tftpFetch(tftpd.port, 'pxelinux.0');
    expect(pxelinux.ok ? sha256(pxelinux.bytes) : pxelinux.reason).toBe(sha256(OLD_FILES['pxelinux.0'] as Buffer));

    // Nothing in the root but the bystanders and the layout of published names: no state, no temporaries.
    const { body: catalog } = await getJson<{ entries: CatalogEntry[] }>('/api/v1/files');
    const layout = (path: string) =>
      catalog.entries.some(
        (e) =>
          path === e.name ||
          path === `${e.name}-orig` ||
          new RegExp(`^${escape(e.name)}-orig/[^/]+(/${escape(e.basename)})?$`).test(path),
      );
    const stray = (await walk(root)).filter(
      (e) => !(e.kind === 'dir' && ['boot', 'pxelinux.cfg'].includes(e.path)) && !BYSTANDERS.includes(e.path),
    );
    expect(stray.filter((e) => !layout(e.path))).toEqual([]);
  }, 120_000);
});
