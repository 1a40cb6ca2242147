/**
 * Races around the end of a fetch, seen from outside the real `pxecache serve` process (found while writing the TFTP
 * end-to-end suite). Both need a caller that acts within milliseconds of a fetch turning `ready`, which Foreman does
 * when it builds hosts back to back (kernel + initrd per host, the same URLs each time) and an operator's dashboard
 * or `POST /api/v1/fetch` poller does all the time. Each test gives the race many chances; without the bug it cannot
 * fail, whatever the timing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServeProcess, type ServeProcess } from '../helpers/serve-process.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { fetchBootFile as postFetchBootFile, overHttp } from '../helpers/api.js';

interface FileStatus {
  readonly state: string;
  readonly sha256: string | null;
  readonly error: { readonly code: string } | null;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

let base: string;
let upstream: Upstream;
let serve: ServeProcess;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'pxecache-e2e-races-'));
  upstream = await createUpstream();
  serve = await startServeProcess(join(base, 'store'), ['--host', '127.0.0.1']);
}, 30_000);

afterAll(async () => {
  await serve?.stop();
  await upstream?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

async function status(name: string): Promise<FileStatus> {
  const res = await fetch(`${serve.url}/api/v1/files/${name}`, { signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`GET /api/v1/files/${name}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as FileStatus;
}

/** Foreman's call, as ProxyAPI::TFTP sends it: a form POST; smart-proxy answers 200 with an empty body. */
async function fetchBootFile(prefix: string, path: string): Promise<void> {
  const res = await postFetchBootFile(overHttp(serve.url), { prefix, path });
  expect({ status: res.status, body: await res.text() }).toEqual({ status: 200, body: '' });
}

/** Polls without pausing (the point is to act the moment `ready` shows) until `name` is ready with `sha`. */
async function pollUntilReady(name: string, sha: string, timeoutMs: number): Promise<FileStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: FileStatus | null = null;
  while (Date.now() < deadline) {
    last = await status(name);
    if (last.state === 'ready' && last.sha256 === sha) return last;
    if (last.state === 'failed') {
      throw new Error(`fetch of ${name} failed: ${JSON.stringify(last)}`);
    }
  }
  throw new Error(`${name} not ready with sha256 ${sha} within ${timeoutMs} ms; last status: ${JSON.stringify(last)}`);
}

describe('fetch_boot_file at the end of a fetch', () => {
  // Broke: a call arriving between the `ready` status write and the end of the job's bookkeeping (lease release, final
  // status read) joined the finished job through the in-process coalescing map, so it was answered 200 without any
  // upstream request, and a respin published meanwhile was never fetched. DESIGN.md: every call revalidates upstream.
  it('revalidates upstream when called the moment the previous fetch of the same URL turned ready', async () => {
    const path = '/respin/images/pxeboot/vmlinuz';
    for (let i = 0; i < 10; i++) {
      const first = randomBytes(4096);
      upstream.set(path, first);
      await fetchBootFile('boot/race', upstream.url(path));
      await pollUntilReady('boot/race-vmlinuz', sha256(first), 10_000);

      const respin = randomBytes(4096);
      upstream.set(path, respin);
      const requestsBefore = upstream.count(path);
      await fetchBootFile('boot/race', upstream.url(path));
      const after = await pollUntilReady('boot/race-vmlinuz', sha256(respin), 10_000).catch((err: Error) => err);
      expect(
        after instanceof Error ? after.message : 'ready with the respin',
        `round ${i}: the second call caused ${upstream.count(path) - requestsBefore} upstream requests`,
      ).toBe('ready with the respin');
    }
  }, 120_000);

  // Broke: readStatus read the `fetching` record, then looked for a live lease; a job finishing in between (status
  // written `ready`, lease released) made a successful fetch read as failed/`interrupted`, the state reserved for a
  // fetcher that died. A poller that stops on `failed` (Foreman-side tooling, `pxecache` dashboards) reports an error.
  it('never reports a fetch that succeeds as failed (interrupted) to a status poller', async () => {
    const name = 'boot/poll-vmlinuz';
    const failures: string[] = [];
    let polls = 0;
    let stop = false;
    const pollers = Array.from({ length: 3 }, async () => {
      while (!stop) {
        const s = await status(name).catch(() => null); // 404 before the first fetch
        polls++;
        if (s?.state === 'failed') failures.push(JSON.stringify(s.error));
      }
    });
    try {
      for (let i = 0; i < 20; i++) {
        const bytes = randomBytes(4096);
        upstream.set('/poll/vmlinuz', bytes);
        // A distinct query per round: distinct URLs never coalesce, so the previous test's race stays out of this one.
        await fetchBootFile('boot/poll', upstream.url(`/poll/vmlinuz?round=${i}`));
        await pollUntilReady(name, sha256(bytes), 10_000);
      }
    } finally {
      stop = true;
      await Promise.all(pollers);
    }
    expect(failures, `${failures.length} of ${polls} status reads said failed`).toEqual([]);
  }, 120_000);
});
