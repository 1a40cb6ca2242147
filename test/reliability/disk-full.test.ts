/**
 * Edge disk full (issue 7): the agent's TFTP root on a small tmpfs, a published version larger than the free space.
 * The old version must stay intact and served by a real tftpd-hpa, the failure must be reported (exit status and
 * message of `agent --once`, `agent-last-sync.json`), no partial temporary may stay behind, and the sync must
 * recover once space returns. Needs root (mount), tftpd-hpa, tftp-hpa and the built CLI (`npm run build`).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServeProcess, type ServeProcess } from '../helpers/serve-process.js';
import { assertTftpTools, startTftpd, tftpFetch } from '../helpers/tftp.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { runAgentOnce, startAgentProcess } from './agent-process.js';
import { sha256, tempsUnder } from './edge-check.js';

const MiB = 1024 * 1024;
const PREFIX = 'boot/alma-9-Disk';
const URL_PATH = '/alma/9/images/pxeboot/initrd.img';
const NAME = `${PREFIX}-initrd.img`;
const target = (bytes: Buffer) => `alma-9-Disk-initrd.img-orig/${sha256(bytes).slice(0, 16)}/initrd.img`;

let base: string;
let upstream: Upstream;
let serve: ServeProcess;
/** Per test, run in reverse: the tftpd chrooted in a mount must stop before the mount can go. */
let cleanups: (() => Promise<unknown> | void)[] = [];

beforeAll(async () => {
  assertTftpTools();
  base = await mkdtemp(join(tmpdir(), 'pxecache-disk-full-'));
  upstream = await createUpstream();
  serve = await startServeProcess(join(base, 'store'), ['--host', '127.0.0.1']);
}, 60_000);

afterEach(async () => {
  const errors: unknown[] = [];
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch (err) {
      errors.push(err);
    }
  }
  cleanups = [];
  if (errors.length) throw new AggregateError(errors, 'disk-full cleanup failed');
});

afterAll(async () => {
  await serve?.stop();
  await upstream?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

/** A TFTP root of `mb` MiB (tmpfs), unmounted after the test whatever happens; the state dir stays on the big disk. */
async function smallRoot(label: string, mb: number) {
  const root = join(base, label, 'tftpboot');
  await mkdir(root, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mb}m,mode=0755`, 'tmpfs', root]);
  cleanups.push(() => void execFileSync('umount', [root]));
  const tftpd = await startTftpd(root);
  cleanups.push(() => tftpd.stop());
  return {
    root,
    stateDir: join(base, label, 'tftpboot.state'),
    resize: (size: number) => execFileSync('mount', ['-o', `remount,size=${size}m`, root]),
    read: async () => {
      const got = await tftpFetch(tftpd.port, NAME);
      return got.ok ? sha256(got.bytes) : got.reason;
    },
  };
}

async function publish(bytes: Buffer): Promise<void> {
  upstream.set(URL_PATH, bytes);
  const res = await fetch(`${serve.url}/api/v1/fetch?wait=30`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prefix: PREFIX, path: upstream.url(URL_PATH) }),
  });
  const body = (await res.json()) as { state: string; sha256: string };
  expect({ status: res.status, state: body.state, sha256: body.sha256 }).toEqual({
    status: 200,
    state: 'ready',
    sha256: sha256(bytes),
  });
}

interface LastSync {
  readonly ok: boolean;
  readonly failed: readonly { readonly name: string; readonly message: string }[];
}
const lastSync = async (stateDir: string) =>
  JSON.parse(await readFile(join(stateDir, 'agent-last-sync.json'), 'utf8')) as LastSync;

/** Every regular file under `<name>-orig/`, with its size: a partial download would show here under any name. */
async function versionFiles(root: string): Promise<string[]> {
  const orig = join(root, 'boot', 'alma-9-Disk-initrd.img-orig');
  const out: string[] = [];
  for (const v of await readdir(orig)) {
    for (const f of await readdir(join(orig, v))) out.push(`${v}/${f} ${(await lstat(join(orig, v, f))).size}`);
  }
  return out.sort();
}

describe('edge disk full', () => {
  it('agent --once: keeps serving the old version, exits 1 naming the file and ENOSPC, recovers when space returns', async () => {
    const edge = await smallRoot('once', 4);
    const args = ['--source', serve.url, '--tftp-root', edge.root, '--state-dir', edge.stateDir];
    const v1 = randomBytes(1 * MiB);
    await publish(v1);
    const first = await runAgentOnce(args);
    expect(first.code, first.output).toBe(0);
    expect(await readlink(join(edge.root, NAME))).toBe(target(v1));

    const v2 = randomBytes(6 * MiB); // more than the ~3 MiB left
    await publish(v2);
    const full = await runAgentOnce(args);
    expect(full.code, full.output).toBe(1);
    // The file, the space it wanted and the errno, on the line naming the failed name (see localFailure in activate.ts).
    const v2File = join(edge.root, 'boot', target(v2));
    expect(full.output).toContain(
      `failed    ${NAME} ${sha256(v2).slice(0, 16)}: local-write [agent] ${NAME}: writing ${v2File} (${6 * MiB} bytes) failed: ` +
        'ENOSPC: no space left on device, write; nothing was published, the previous version keeps serving',
    );
    expect(full.output).toMatch(/NOT in sync/);
    const state = await lastSync(edge.stateDir);
    expect(state.ok).toBe(false);
    expect(state.failed).toEqual([expect.objectContaining({ name: NAME, message: expect.stringMatching(/ENOSPC/) })]);

    // The old version, intact and served; nothing partial anywhere in the root.
    expect(await readlink(join(edge.root, NAME))).toBe(target(v1));
    expect(sha256(await readFile(join(edge.root, NAME)))).toBe(sha256(v1));
    expect(await edge.read()).toBe(sha256(v1));
    expect(await tempsUnder(edge.root)).toEqual([]);
    expect(await tempsUnder(edge.stateDir)).toEqual([]);
    expect(await versionFiles(edge.root)).toEqual([`${sha256(v1).slice(0, 16)}/initrd.img ${1 * MiB}`]);

    edge.resize(16);
    const recovered = await runAgentOnce(args);
    expect(recovered.code, recovered.output).toBe(0);
    expect(recovered.output).toMatch(/in sync/);
    expect(await readlink(join(edge.root, NAME))).toBe(target(v2));
    expect(await edge.read()).toBe(sha256(v2));
    expect((await lastSync(edge.stateDir)).failed).toEqual([]);
    expect(await tempsUnder(edge.root)).toEqual([]);
  }, 120_000);

  it('a running agent reports the failure, keeps serving, and applies the version by itself once space returns', async () => {
    const edge = await smallRoot('running', 4);
    const v1 = randomBytes(1 * MiB);
    await publish(v1);
    const agent = startAgentProcess([
      ...['--source', serve.url, '--tftp-root', edge.root, '--state-dir', edge.stateDir],
      ...['--interval', '0.2', '--wait', '2'],
    ]);
    cleanups.push(() => agent.kill());
    await waitFor(
      'the running agent to publish v1',
      async () => {
        const got = await readlink(join(edge.root, NAME)).catch(() => null);
        return { done: got === target(v1), value: got };
      },
      { timeoutMs: 30_000 },
    );

    const v2 = randomBytes(6 * MiB);
    await publish(v2);
    const failure = await agent.waitForLine('"agent: name failed" for v2', (l) => l.msg === 'agent: name failed');
    expect(failure).toMatchObject({
      name: NAME,
      version: sha256(v2).slice(0, 16),
      error: expect.stringMatching(/ENOSPC/),
    });
    await waitFor('agent-last-sync.json to list the failure', async () => {
      const state = await lastSync(edge.stateDir).catch(() => null);
      return { done: state?.failed.some((f) => f.name === NAME && /ENOSPC/.test(f.message)) === true, value: state };
    });
    expect(await edge.read()).toBe(sha256(v1));
    expect(await readlink(join(edge.root, NAME))).toBe(target(v1));
    expect(await tempsUnder(edge.root)).toEqual([]);

    edge.resize(16);
    // Retries back off (interval x 2^failures, capped): a few seconds here, since space came back after one failure.
    await waitFor(
      'the agent to publish v2 after space returned',
      async () => {
        const got = await readlink(join(edge.root, NAME)).catch(() => null);
        return { done: got === target(v2), value: got };
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    expect(await edge.read()).toBe(sha256(v2));
    expect(await tempsUnder(edge.root)).toEqual([]);
  }, 120_000);
});
