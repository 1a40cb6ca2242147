/**
 * Respin sets end to end (docs/respin-sets.md): a real upstream serves a kernel and an initrd under one prefix,
 * `pxecache serve` fetches them on Foreman-style calls, a real `pxecache agent` process (or serve's in-process one)
 * keeps a TFTP root that real tftpd-hpa serves to tftp-hpa clients reading both names in a loop. A respin of both must
 * reach the root as one set: both links renamed in one pass (measured and counted in metrics.prom and /metrics), every
 * read a complete old or new file; a member still being fetched holds the set's renames (up to --set-hold).
 * Needs root, tftpd-hpa, tftp-hpa and the built CLI (`npm run build`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchBootFile as postFetchBootFile, overHttp } from '../helpers/api.js';
import { startServeProcess, type LogLine, type ServeProcess } from '../helpers/serve-process.js';
import { assertTftpTools, startTftpd } from '../helpers/tftp.js';
import { startReaders, type ReaderPool } from '../helpers/tftp-readers.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { waitFor as poll } from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const KiB = 1024;
const PREFIX = 'boot/centos-9-AbCdEf012345';
const KERNEL_PATH = '/centos/9/BaseOS/x86_64/os/images/pxeboot/vmlinuz';
const INITRD_PATH = '/centos/9/BaseOS/x86_64/os/images/pxeboot/initrd.img';
const KERNEL = `${PREFIX}-vmlinuz`;
const INITRD = `${PREFIX}-initrd.img`;
const RESPINS = 5;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const linkTarget = (name: string, version: string, basename: string) =>
  `${name.slice(name.lastIndexOf('/') + 1)}-orig/${version}/${basename}`;

interface SetSwap {
  readonly prefix: string;
  readonly names: readonly string[];
  readonly windowNs: number;
}

let base: string;
let upstream: Upstream;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  assertTftpTools();
  base = await mkdtemp(join(tmpdir(), 'pxecache-e2e-sets-'));
  upstream = await createUpstream();
  cleanups.push(() => upstream.close());
}, 60_000);

afterAll(async () => {
  const errors: unknown[] = [];
  for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => errors.push(err));
  if (base) await rm(base, { recursive: true, force: true });
  if (errors.length) throw new AggregateError(errors, 'e2e cleanup failed');
});

/** helpers/wait.ts's waitFor, with a probe that returns `{ ok }` or what it sees instead. */
function waitFor<T>(what: string, probe: () => Promise<{ ok: T } | string>, timeoutMs = 30_000): Promise<T> {
  return poll(
    what,
    async () => {
      const got = await probe();
      return typeof got === 'string' ? { done: false, value: got as unknown as T } : { done: true, value: got.ok };
    },
    { timeoutMs },
  );
}

/** Foreman's call, as ProxyAPI::TFTP sends it. */
async function fetchBootFile(serve: ServeProcess, path: string): Promise<void> {
  const res = await postFetchBootFile(overHttp(serve.url), { prefix: PREFIX, path: upstream.url(path) });
  expect({ status: res.status, body: await res.text() }).toEqual({ status: 200, body: '' });
}

async function status(serve: ServeProcess, name: string): Promise<{ state: string; sha256: string | null }> {
  const res = await fetch(`${serve.url}/api/v1/files/${name}`, { signal: AbortSignal.timeout(10_000) });
  return (await res.json()) as { state: string; sha256: string | null };
}

const versionOf = (bytes: Uint8Array) => sha256(bytes).slice(0, 16);
const readLink = (root: string, name: string) => readlink(join(root, name)).catch(() => '<none>');

async function waitLinks(root: string, kernel: Buffer, initrd: Buffer, timeoutMs = 30_000): Promise<void> {
  const want = [linkTarget(KERNEL, versionOf(kernel), 'vmlinuz'), linkTarget(INITRD, versionOf(initrd), 'initrd.img')];
  await waitFor(
    `links -> ${want.join(', ')}`,
    async () => {
      const got = [await readLink(root, KERNEL), await readLink(root, INITRD)];
      return got[0] === want[0] && got[1] === want[1] ? { ok: got } : `links read ${got.join(', ')}`;
    },
    timeoutMs,
  );
}

/** Prometheus text (textfile collector input) as `series -> value`; throws on a line that is not a sample. */
function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    // NaN in any case is a value (prom-client writes the event-loop lag as "Nan" before its first sample).
    if (!m || (Number.isNaN(Number(m[2])) && !/^nan$/i.test(m[2] ?? '')))
      throw new Error(`not a Prometheus sample: ${JSON.stringify(line)}`);
    out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

/** The set swaps the agent logged in its "sync done" lines. */
const setSwapsIn = (logs: readonly LogLine[]): SetSwap[] =>
  logs.filter((l) => String(l.msg).startsWith('agent: sync done')).flatMap((l) => (l['setSwaps'] ?? []) as SetSwap[]);

/** `pxecache agent` as its own process, JSON log lines collected. */
function startAgentProcess(args: readonly string[]): { logs: LogLine[]; output(): string; stop(): Promise<void> } {
  const child: ChildProcess = spawn(process.execPath, [CLI, 'agent', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PXECACHE_LOG_LEVEL: 'info' },
  });
  const logs: LogLine[] = [];
  let raw = '';
  let pending = '';
  child.stdout?.on('data', (d: Buffer) => (raw += d.toString()));
  child.stderr?.on('data', (d: Buffer) => {
    raw += d.toString();
    pending += d.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    logs,
    output: () => raw,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Readers of one name accepting any version upstream ever served for it, and nothing older than the epoch's. */
function readersOf(port: number, remote: string, history: string[]): ReaderPool {
  return startReaders({
    port,
    remote,
    readers: 2,
    check(bytes, epoch) {
      const at = history.indexOf(sha256(bytes));
      if (at === -1) return `${bytes.byteLength} bytes hashing to ${sha256(bytes)}: not a version upstream served`;
      if (at < epoch) return `version #${at} read after the link had moved to #${epoch} (stale)`;
      return null;
    },
  });
}

/** `serve --tftp-root` (in-process agent) with version 1 of both files published and linked. */
async function servePublished(tag: string, extra: readonly string[] = []) {
  const root = join(base, `tftpboot-${tag}`);
  const flags = ['--host', '127.0.0.1', '--tftp-root', root, '--agent-interval', '0.2', ...extra];
  const serve = await startServeProcess(join(base, `store-${tag}`), flags);
  cleanups.push(() => serve.stop());
  const v1 = [randomBytes(300 * KiB), randomBytes(500 * KiB)] as const;
  upstream.set(KERNEL_PATH, v1[0]);
  upstream.set(INITRD_PATH, v1[1]);
  await fetchBootFile(serve, KERNEL_PATH);
  await fetchBootFile(serve, INITRD_PATH);
  await waitLinks(root, v1[0], v1[1]);
  // The pass that moved the initrd has logged and counted (its link moves first).
  await waitFor('the first initrd swap logged', async () =>
    setSwapsIn(serve.logs).some((s) => s.names.includes(INITRD)) ? { ok: true } : 'not yet',
  );
  return { serve, root, v1 };
}

describe('respin sets', () => {
  it('a kernel+initrd respin reaches a separate agent as one set while TFTP clients read both', async () => {
    const serve = await startServeProcess(join(base, 'store-a'), ['--host', '127.0.0.1']);
    cleanups.push(() => serve.stop());
    const root = join(base, 'tftpboot-a');
    const stateDir = `${root}.state`;
    await mkdir(root);
    const agent = startAgentProcess(['--source', serve.url, '--tftp-root', root, '--interval', '0.2', '--wait', '5']);
    cleanups.push(() => agent.stop());
    const tftpd = await startTftpd(root);
    cleanups.push(() => tftpd.stop());

    const kernels = [randomBytes(randomInt(600 * KiB, 900 * KiB))];
    const initrds = [randomBytes(randomInt(900 * KiB, 1400 * KiB))];
    const history = { kernel: [sha256(kernels[0] as Buffer)], initrd: [sha256(initrds[0] as Buffer)] };
    upstream.set(KERNEL_PATH, kernels[0] as Buffer);
    upstream.set(INITRD_PATH, initrds[0] as Buffer);
    await fetchBootFile(serve, KERNEL_PATH);
    await fetchBootFile(serve, INITRD_PATH);
    await waitLinks(root, kernels[0] as Buffer, initrds[0] as Buffer);
    // The pass that moved the first initrd has logged (its link moves before its log line).
    await waitFor('the first set swaps logged', async () =>
      setSwapsIn(agent.logs).some((s) => s.names.includes(INITRD)) ? { ok: true } : agent.output().slice(-500),
    );
    const metricsBefore = parseProm(await readFile(join(stateDir, 'metrics.prom'), 'utf8'));
    const swapsBefore = setSwapsIn(agent.logs).length;

    const readers = [readersOf(tftpd.port, KERNEL, history.kernel), readersOf(tftpd.port, INITRD, history.initrd)];
    try {
      for (const r of readers) await r.waitForFreshReads('the first publication');
      for (let i = 1; i <= RESPINS; i++) {
        const kernel = randomBytes(randomInt(600 * KiB, 900 * KiB));
        const initrd = randomBytes(randomInt(900 * KiB, 1400 * KiB));
        history.kernel.push(sha256(kernel));
        history.initrd.push(sha256(initrd));
        upstream.set(KERNEL_PATH, kernel);
        upstream.set(INITRD_PATH, initrd);
        // Foreman asks for the kernel, then the initrd, of the host being built.
        await fetchBootFile(serve, KERNEL_PATH);
        await fetchBootFile(serve, INITRD_PATH);
        await waitLinks(root, kernel, initrd);
        for (const r of readers) r.setEpoch(i);
        for (const r of readers) await r.waitForFreshReads(`respin ${i}`);
      }
    } finally {
      for (const r of readers) await r.stop();
    }
    const reads = readers.map((r) => r.reads());
    expect(readers.flatMap((r) => r.failures)).toEqual([]);
    expect(readers.flatMap((r) => r.problems)).toEqual([]);

    // One set swap per respin, each with both names: the agent never moved one link of the set without the other.
    const swaps = setSwapsIn(agent.logs).slice(swapsBefore);
    expect(swaps.map((s) => ({ prefix: s.prefix, names: s.names }))).toEqual(
      Array.from({ length: RESPINS }, () => ({ prefix: PREFIX, names: [KERNEL, INITRD] })),
    );
    const state = JSON.parse(await readFile(join(stateDir, 'agent-last-sync.json'), 'utf8')) as {
      setSwaps: SetSwap[];
    };
    expect(state.setSwaps.map((s) => s.names)).toEqual([[KERNEL, INITRD]]);
    const metricsAfter = parseProm(await readFile(join(stateDir, 'metrics.prom'), 'utf8'));
    const moved = (series: string) => (metricsAfter.get(series) ?? NaN) - (metricsBefore.get(series) ?? NaN);
    expect(moved('pxecache_agent_set_swaps_total')).toBe(RESPINS);
    expect(moved('pxecache_agent_set_swap_window_seconds_count')).toBe(RESPINS);
    const windowsUs = swaps.map((s) => s.windowNs / 1000);
    console.log(
      `respin-sets e2e: ${RESPINS} kernel+initrd respins, ${reads.join('+')} TFTP reads, all complete; ` +
        `set swap windows (first rename to last, µs): ${windowsUs.map((w) => w.toFixed(1)).join(', ')}; ` +
        `max ${Math.max(...windowsUs).toFixed(1)} µs; ` +
        `metrics.prom max ${(metricsAfter.get('pxecache_agent_set_swap_window_max_seconds') ?? NaN) * 1e6} µs`,
    );
  }, 300_000);

  it('holds the kernel link until the gated initrd is published, then moves both in one pass (serve --tftp-root)', async () => {
    const { serve, root, v1 } = await servePublished('b');
    const scrape = async () => parseProm(await (await fetch(`${serve.url}/metrics`)).text());
    const before = await scrape();

    let release!: () => void;
    const v2 = [randomBytes(310 * KiB), randomBytes(510 * KiB)] as const;
    upstream.set(KERNEL_PATH, v2[0]);
    upstream.set(INITRD_PATH, v2[1], { gate: new Promise<void>((r) => (release = r)) });
    try {
      await fetchBootFile(serve, KERNEL_PATH);
      // The kernel is published and downloaded at the edge; its link stays on v1 while the initrd is fetching.
      await waitFor('the kernel published', async () => {
        const s = await status(serve, KERNEL);
        return s.sha256 === sha256(v2[0]) ? { ok: true } : `kernel ${s.state} ${s.sha256}`;
      });
      const kernelFile = join(root, 'boot', linkTarget(KERNEL, versionOf(v2[0]), 'vmlinuz'));
      await waitFor('the new kernel downloaded at the edge', async () =>
        (await stat(kernelFile).catch(() => null)) ? { ok: true } : 'not yet',
      );
      expect((await status(serve, INITRD)).state).toBe('fetching');
      for (let i = 0; i < 10; i++) {
        expect(await readLink(root, KERNEL)).toBe(linkTarget(KERNEL, versionOf(v1[0]), 'vmlinuz'));
        await sleep(200);
      }
      expect(serve.logs.some((l) => l.msg === 'agent: holding a set until its members are fetched')).toBe(true);
    } finally {
      release();
    }
    await fetchBootFile(serve, INITRD_PATH);
    await waitLinks(root, v2[0], v2[1]);
    await waitFor('the set swap logged', async () =>
      setSwapsIn(serve.logs).at(-1)?.names.length === 2 ? { ok: true } : 'not yet',
    );
    const last = setSwapsIn(serve.logs).at(-1);
    expect(last).toMatchObject({ prefix: PREFIX, names: [KERNEL, INITRD] });
    const after = await scrape();
    expect(
      (after.get('pxecache_agent_set_swaps_total') ?? 0) - (before.get('pxecache_agent_set_swaps_total') ?? 0),
    ).toBe(1);
    expect(after.get('pxecache_agent_set_holds_total{result="complete"}')).toBe(1);
    expect(after.has('pxecache_fetches_total{result="published"}')).toBe(true);
    console.log(`respin-sets e2e (held set): window ${((last?.windowNs ?? NaN) / 1000).toFixed(1)} µs`);
  }, 120_000);

  it('--set-hold 0 moves the kernel link at once while the initrd is still fetching', async () => {
    const { serve, root, v1 } = await servePublished('c', ['--set-hold', '0']);

    let release!: () => void;
    const v2 = [randomBytes(320 * KiB), randomBytes(520 * KiB)] as const;
    upstream.set(KERNEL_PATH, v2[0]);
    upstream.set(INITRD_PATH, v2[1], { gate: new Promise<void>((r) => (release = r)) });
    try {
      await fetchBootFile(serve, KERNEL_PATH);
      await waitFor('the kernel link moved', async () => {
        const got = await readLink(root, KERNEL);
        return got === linkTarget(KERNEL, versionOf(v2[0]), 'vmlinuz') ? { ok: got } : got;
      });
      expect((await status(serve, INITRD)).state).toBe('fetching');
      expect(await readLink(root, INITRD)).toBe(linkTarget(INITRD, versionOf(v1[1]), 'initrd.img'));
    } finally {
      release();
    }
    await waitLinks(root, v2[0], v2[1]);
    // The pass's log line comes after its renames: wait for it rather than read the log the moment the link moved.
    await waitFor('the initrd swap logged', async () =>
      setSwapsIn(serve.logs).at(-1)?.names.includes(INITRD) ? { ok: true } : 'not yet',
    );
    expect(
      setSwapsIn(serve.logs)
        .slice(-2)
        .map((s) => s.names),
    ).toEqual([[KERNEL], [INITRD]]);
  }, 120_000);
});
