/**
 * Crash safety of the fetcher under kill -9 (issue 7): the built CLI (`pxecache serve`, or a `pxecache fetch`
 * one-shot) is SIGKILLed at a random point of a fetch of a multi-MiB file from a real, slowed-down upstream, on a
 * file store or on S3. After every kill a fresh `serve` starts and the run checks what README "Crash safety"
 * promises; at the end every name is fetched again and must succeed, and no abandoned write or lease may remain.
 * No vitest imports: the CI test and the soak entry both call `runFetcherCrash`. Run `npm run build` first.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FileStatus } from '../../src/core/records.js';
import { createS3ClientFromEnv } from '../../src/storage/s3-client.js';
import { createFileStore } from '../../src/storage/file-store.js';
import { createS3Store } from '../../src/storage/s3-store.js';
import { startServeProcess, type ServeProcess } from '../helpers/serve-process.js';
import { createUpstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { abandonedWrites, checkPointer, leaseKeys, orphanData, type StoreUnderTest } from './crash-checks.js';
import { seededRandom } from './seeded-random.js';

export interface FetcherCrashOptions {
  readonly store: 'file' | 's3';
  /** SIGKILLs, one per fetch. */
  readonly kills: number;
  /** s3: an S3 environment (AWS_* variables) and a bucket the run may write; it works under a prefix of its own. */
  readonly s3?: { readonly env: Readonly<Record<string, string>>; readonly bucket: string };
  /** Distinct names fetched in turn (default 3). */
  readonly names?: number;
  /** Size of each upstream file (default 6 MiB: above the 5 MiB S3 part, so S3 fetches are multipart uploads). */
  readonly fileBytes?: number;
  /** How long upstream should take to send one file (default 600 ms; timers make it longer): kills spread over it. */
  readonly transferMs?: number;
  /** Seed of the kill points and upstream changes; printed in the summary, so a failing run can be replayed. */
  readonly seed?: number;
  /** Progress lines (one per kill); default: silent. */
  readonly log?: (line: string) => void;
}

export interface Summary {
  readonly store: 'file' | 's3';
  readonly seed: number;
  readonly kills: number;
  /** Kills of a `serve` after it accepted the fetch, and of a `pxecache fetch` one-shot. */
  readonly killedServe: number;
  readonly killedOneShot: number;
  /** After the kill the name was ready on the bytes upstream served: the fetch finished before the kill. */
  readonly fetchesCompleted: number;
  /** After the kill the name was reported `failed` (code `interrupted`). */
  readonly fetchesFailed: number;
  /**
   * The process died before it recorded the fetch: the previous state (or nothing) is shown, as if never asked. Common:
   * a ready name is revalidated without a lease or status write until upstream answers, and a freshly started
   * process's first upstream request takes a few hundred ms; a one-shot also spends most of its time starting.
   */
  readonly fetchesNotRecorded: number;
  /** Names fetched again after the last kill: each must end ready on upstream's current bytes. */
  readonly recoveryFetches: number;
  /** Distinct names whose pointers were verified at the end; pointer checks counts every verification. */
  readonly namesChecked: number;
  readonly pointerChecks: number;
  /** Abandoned writes (temps, multipart uploads) removed by restarts, seen in the stores' logs. */
  readonly abandonedWritesRemoved: number;
  /** Data objects no blob index points at (leaked by kills; nothing collects them yet). Informational. */
  readonly orphanDataObjects: number;
  /** Calibration: how long one whole fetch took through serve and as a one-shot (kill points spread over these). */
  readonly fetchMs: { readonly serve: number; readonly oneShot: number };
  readonly problems: readonly string[];
  readonly durationMs: number;
}

const LEASE_TTL_S = 1;
/** Short so the test sees the sweep at start work; production's default is an hour. */
const STALE_WRITE_AGE_S = 1;
const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export async function runFetcherCrash(opts: FetcherCrashOptions): Promise<Summary> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  const started = Date.now();
  const seed = opts.seed ?? randomBytes(4).readUInt32LE(0);
  const random = seededRandom(seed);
  const nameCount = opts.names ?? 3;
  const fileBytes = opts.fileBytes ?? 6 * 1024 * 1024;
  const transferMs = opts.transferMs ?? 600;
  const log = opts.log ?? (() => undefined);
  const problems: string[] = [];
  const counts = { serve: 0, oneShot: 0, completed: 0, failed: 0, notRecorded: 0, pointerChecks: 0, removed: 0 };

  const work = await mkdtemp(join(tmpdir(), 'pxecache-crash-'));
  const upstream = await createUpstream();
  const target = openTarget(opts, work);
  const storeUrl = target.kind === 'file' ? `file:${target.root}` : `s3://${target.bucket}/${target.prefix}`;
  const env = { ...(opts.s3?.env ?? {}), PXECACHE_LOG_LEVEL: 'info' };
  const flags = ['--lease-ttl', String(LEASE_TTL_S), '--stale-write-age', String(STALE_WRITE_AGE_S)];
  const chunkSize = 64 * 1024;
  const chunkDelayMs = Math.max(1, Math.round(transferMs / Math.ceil(fileBytes / chunkSize)));
  const names = Array.from({ length: nameCount }, (_, i) => ({
    prefix: `boot/crash-${i}`,
    path: upstream.url(`/media/${i}/vmlinuz`),
    name: `boot/crash-${i}-vmlinuz`,
    sha256: '',
  }));
  const publish = (n: (typeof names)[number]) => {
    const bytes = randomBytes(fileBytes - Math.floor(random() * 4096));
    n.sha256 = createHash('sha256').update(bytes).digest('hex');
    upstream.set(new URL(n.path).pathname, bytes, { chunkDelayMs, chunkSize });
  };
  names.forEach(publish);

  let serve: ServeProcess | null = null;
  const restart = async () => {
    serve = await startServeProcess(storeUrl, flags, env);
    return serve;
  };
  const countRemoved = (s: ServeProcess) => {
    for (const line of s.logs) if (line.msg === 'abandoned writes removed') counts.removed += Number(line['removed']);
  };
  try {
    let live = await restart();
    // Calibration: every name published once (so kills hit re-fetches of published names too, whose kept versions
    // must survive), and how long a whole fetch takes through serve and through a one-shot: kill points spread over
    // 1.2 times that, so some land after the end (completed), most mid-transfer, some mid-publication.
    let serveMs = 0;
    for (const n of names) {
      const t0 = Date.now();
      await fetchAndWait(live.url, n, problems, 'calibration');
      serveMs = Math.max(serveMs, Date.now() - t0);
    }
    await live.stop();
    const first = names[0] as (typeof names)[number];
    publish(first);
    const t0 = Date.now();
    await killOneShot(storeUrl, first, flags, env, 120_000);
    const oneShotMs = Date.now() - t0;
    live = await restart();
    // A one-shot may finish before its kill point: such a run is a completed fetch, not a kill, and another follows.
    let kills = 0;
    for (let k = 0; kills < opts.kills && k < opts.kills * 3; k++) {
      const n = names[k % nameCount] as (typeof names)[number];
      // Mostly a changed upstream file, so most fetches download and publish; sometimes an unchanged one (304).
      if (random() < 0.75) publish(n);
      const oneShot = k % 2 === 1;
      const delayMs = Math.floor(random() * 1.2 * (oneShot ? oneShotMs : serveMs));
      if (oneShot) {
        await live.stop();
        countRemoved(live);
        if (await killOneShot(storeUrl, n, flags, env, delayMs)) counts.oneShot++;
      } else {
        const accepted = await fetch(`${live.url}/tftp/fetch_boot_file`, {
          method: 'POST',
          body: new URLSearchParams({ prefix: n.prefix, path: n.path }),
        });
        if (accepted.status !== 200) problems.push(`kill ${k}: fetch_boot_file answered ${accepted.status}`);
        await sleep(delayMs);
        await live.kill('SIGKILL');
        countRemoved(live);
        counts.serve++;
      }
      kills = counts.serve + counts.oneShot;
      live = await restart();
      const outcome = await settledOutcome(live.url, n, problems, `kill ${k}`);
      counts[outcome]++;
      log(
        `run ${k + 1} (${kills}/${opts.kills} kills) ${oneShot ? 'fetch' : 'serve'} +${delayMs} ms ${n.name}: ${outcome}`,
      );
      for (const m of names) if (await checkPointer(target, m.name, problems)) counts.pointerChecks++;
    }

    // Recovery: past the stale-write age and two lease TTLs, so the next start must remove every leftover.
    if (kills < opts.kills) problems.push(`only ${kills} of ${opts.kills} kills happened: the fetches end too early`);
    await live.stop();
    countRemoved(live);
    await sleep(Math.max(STALE_WRITE_AGE_S, 2 * LEASE_TTL_S) * 1000 + 500);
    live = await restart();
    for (const leftover of await abandonedWrites(target)) problems.push(`after restart: ${leftover}`);
    await waitFor('expired leases to be removed at start', async () => {
      const left = await leaseKeys(target.store);
      return { done: left.length === 0, value: left };
    }).catch((err: unknown) => problems.push(`after restart: ${String(err)}`));
    for (const n of names) await fetchAndWait(live.url, n, problems, 'recovery fetch');
    let namesChecked = 0;
    for (const n of names) {
      const sha256 = await checkPointer(target, n.name, problems);
      if (sha256 === null) problems.push(`${n.name}: not published after its recovery fetch`);
      else namesChecked++;
      counts.pointerChecks++;
    }
    for (const leftover of [...(await abandonedWrites(target)), ...(await leaseKeys(target.store))])
      problems.push(`after recovery: ${leftover}`);
    await live.stop();
    countRemoved(live);
    return {
      store: opts.store,
      seed,
      kills: counts.serve + counts.oneShot,
      killedServe: counts.serve,
      killedOneShot: counts.oneShot,
      fetchesCompleted: counts.completed,
      fetchesFailed: counts.failed,
      fetchesNotRecorded: counts.notRecorded,
      recoveryFetches: names.length,
      namesChecked,
      pointerChecks: counts.pointerChecks,
      abandonedWritesRemoved: counts.removed,
      orphanDataObjects: await orphanData(target.store),
      fetchMs: { serve: serveMs, oneShot: oneShotMs },
      problems,
      durationMs: Date.now() - started,
    };
  } finally {
    await (serve as ServeProcess | null)?.kill('SIGKILL');
    await upstream.close();
    await rm(work, { recursive: true, force: true });
  }
}

/** A fetch through the native API, waited for: it must end ready on upstream's current bytes. */
async function fetchAndWait(
  url: string,
  n: { prefix: string; path: string; name: string; sha256: string },
  problems: string[],
  what: string,
): Promise<void> {
  const res = await fetch(`${url}/api/v1/fetch?wait=120`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prefix: n.prefix, path: n.path }),
  });
  const status = (await res.json()) as FileStatus;
  if (res.status !== 200 || status.state !== 'ready' || status.sha256 !== n.sha256)
    problems.push(`${what} of ${n.name}: ${res.status} ${JSON.stringify(status)}`);
}

/** The summary as a few human lines (the soak entry prints it). */
export function formatSummary(s: Summary): string {
  const lines = [
    `fetcher crash (${s.store}, seed ${s.seed}): ${s.kills} kills (${s.killedServe} serve, ${s.killedOneShot} one-shot fetch) in ${(s.durationMs / 1000).toFixed(1)} s`,
    `  one whole fetch: ${s.fetchMs.serve} ms through serve, ${s.fetchMs.oneShot} ms as a one-shot`,
    `  after the kill: ${s.fetchesCompleted} completed, ${s.fetchesFailed} failed (interrupted), ${s.fetchesNotRecorded} not recorded`,
    `  recovery fetches: ${s.recoveryFetches}; names checked: ${s.namesChecked}; pointer checks: ${s.pointerChecks}`,
    `  abandoned writes removed at restarts: ${s.abandonedWritesRemoved}; orphan data objects: ${s.orphanDataObjects}`,
    `  problems: ${s.problems.length}`,
    ...s.problems.map((p) => `    - ${p}`),
  ];
  return lines.join('\n');
}

function openTarget(opts: FetcherCrashOptions, work: string): StoreUnderTest {
  if (opts.store === 'file') {
    const root = join(work, 'store');
    return { kind: 'file', root, store: createFileStore({ root }) };
  }
  if (!opts.s3) throw new Error('store "s3" needs opts.s3 (env and bucket)');
  const client = createS3ClientFromEnv(opts.s3.env);
  const prefix = `crash-${randomBytes(4).toString('hex')}/`;
  return {
    kind: 's3',
    client,
    bucket: opts.s3.bucket,
    prefix,
    store: createS3Store({ client, bucket: opts.s3.bucket, prefix }),
  };
}

/**
 * The state a restarted fetcher reports for the killed fetch once the dead holder's lease has expired. `fetching`
 * past that point is the defect this harness exists to catch (a status nobody will ever finish).
 */
async function settledOutcome(
  url: string,
  n: { name: string; sha256: string },
  problems: string[],
  what: string,
): Promise<'completed' | 'failed' | 'notRecorded'> {
  let status: FileStatus | null = null;
  try {
    status = await waitFor(
      `${n.name} to leave "fetching"`,
      async () => {
        const res = await fetch(`${url}/api/v1/files/${n.name}`);
        const value = res.status === 404 ? null : ((await res.json()) as FileStatus);
        return { done: value?.state !== 'fetching', value };
      },
      { timeoutMs: LEASE_TTL_S * 1000 + 10_000, intervalMs: 100 },
    );
  } catch (err) {
    problems.push(`${what}: ${String(err)}`);
    return 'failed';
  }
  if (status === null) return 'notRecorded';
  if (status.state === 'failed') {
    if (status.error?.code !== 'interrupted')
      problems.push(`${what}: ${n.name} failed with ${JSON.stringify(status.error)}, expected "interrupted"`);
    return 'failed';
  }
  if (status.state !== 'ready') problems.push(`${what}: ${n.name} is ${status.state}`);
  return status.sha256 === n.sha256 ? 'completed' : 'notRecorded';
}

async function killOneShot(
  storeUrl: string,
  n: { prefix: string; path: string },
  flags: readonly string[],
  env: Readonly<Record<string, string>>,
  delayMs: number,
): Promise<boolean> {
  const child = spawn(CLI, ['fetch', '--store', storeUrl, '--prefix', n.prefix, '--url', n.path, ...flags], {
    stdio: 'ignore',
    env: { ...process.env, ...env },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await Promise.race([sleep(delayMs), exited]);
  const running = child.exitCode === null && child.signalCode === null;
  if (running) child.kill('SIGKILL');
  await exited;
  return running;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
