/**
 * Agent crash safety with live readers (issue 7): over many cycles, upstream respins, a `pxecache serve` child
 * publishes the new versions, and a `pxecache agent` child is started and SIGKILLed at a random point of its sync
 * (sometimes after it completed; a proxy between them times kills inside blob downloads), while real tftp-hpa clients loop reads through a real tftpd-hpa. The claims under
 * test (README "How it stays correct"): a read is always a complete published version, a link never dangles, and the
 * temporaries a killed agent leaves are gone once the next one has started.
 *
 * `runAgentCrash` is free of vitest imports: the CI test runs a bounded number of cycles, `npm run soak` many more.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServeProcess, type ServeProcess } from '../helpers/serve-process.js';
import { startTftpd, type Tftpd } from '../helpers/tftp.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { runAgentOnce, startAgentProcess, type AgentLine, type AgentProcess } from './agent-process.js';
import { startBlobTap, type BlobTap } from './blob-tap.js';
import { inspectLinks, sha256, tempsUnder } from './edge-check.js';
import { startNameReaders, type NameReaders } from './name-readers.js';
import { seededRandom } from './seeded-random.js';

export interface AgentCrashOptions {
  readonly cycles: number;
  /** Concurrent TFTP reader loops (8 in CI). */
  readonly readers: number;
  /** Seeds the choice of kill points; printed in the summary so a failing schedule can be replayed. */
  readonly seed?: number;
  /** Size range of each respun file, bytes (default 128 KiB to 1.5 MiB: the agent writes in 1 MiB batches). */
  readonly minBytes?: number;
  readonly maxBytes?: number;
  /** Progress lines (one per cycle); default silent. */
  readonly log?: (line: string) => void;
}

export type KillPoint = 'startup' | 'mid-sync' | 'mid-blob' | 'event' | 'completed';
/** What the root held after a kill, for the respun names: how far the killed sync had got. */
export type KillState = 'nothing-new' | 'mid-download' | 'downloaded-not-linked' | 'partly-linked' | 'all-linked';

export interface AgentCrashSummary {
  readonly seed: number;
  readonly cycles: number;
  readonly kills: number;
  readonly killsByPoint: Record<KillPoint, number>;
  /** Kills after which every link already served the newest version (the sync had completed). */
  readonly syncsCompletedBeforeKill: number;
  /** Where in the sync the kills landed, as seen on disk afterwards (see `landing`). */
  readonly killsByState: Record<KillState, number>;
  readonly versionsPublished: number;
  readonly readsChecked: number;
  readonly frozenReadsChecked: number;
  readonly badReads: number;
  readonly failedReads: number;
  readonly danglingLinks: number;
  /** Temporaries found right after kills (expected: the next start removes them). */
  readonly tempsAfterKills: number;
  /** Temporaries still there after the next start, or after the final sync: must be 0. */
  readonly tempsLeft: number;
  readonly problems: string[];
  readonly durationMs: number;
}

/** The served names: a kernel and initrd of one prefix (published together, as Foreman does) and another kernel. */
const FILES = [
  { prefix: 'boot/centos-9-AbCd', urlPath: '/centos/9/images/pxeboot/vmlinuz' },
  { prefix: 'boot/centos-9-AbCd', urlPath: '/centos/9/images/pxeboot/initrd.img' },
  { prefix: 'boot/debian-12-XyZ1', urlPath: '/debian/12/netboot/linux' },
] as const;
const nameOf = (f: (typeof FILES)[number]) => `${f.prefix}-${f.urlPath.slice(f.urlPath.lastIndexOf('/') + 1)}`;
const NAMES = FILES.map(nameOf);
const KiB = 1024;
const CYCLE_TIMEOUT_MS = 60_000;
/** Log lines that mark points inside a sync; the 'event' kill lands right after one of them. */
const EVENTS = ['agent: started', 'agent: version downloaded', 'agent: link swapped', 'agent: removed old version'];

export async function runAgentCrash(opts: AgentCrashOptions): Promise<AgentCrashSummary> {
  const t0 = Date.now();
  const seed = opts.seed ?? Date.now() % 2 ** 31;
  const random = seededRandom(seed);
  const log = opts.log ?? (() => undefined);
  const [minBytes, maxBytes] = [opts.minBytes ?? 128 * KiB, opts.maxBytes ?? 1536 * KiB];
  const published = new Map<string, Set<string>>(NAMES.map((n) => [n, new Set<string>()]));
  const history = new Map<string, Buffer[]>(NAMES.map((n) => [n, []]));
  const latest = new Map<string, string>();
  const problems: string[] = [];
  const killsByPoint: Record<KillPoint, number> = { startup: 0, 'mid-sync': 0, 'mid-blob': 0, event: 0, completed: 0 };
  const killsByState: Record<KillState, number> = {
    'nothing-new': 0,
    'mid-download': 0,
    'downloaded-not-linked': 0,
    'partly-linked': 0,
    'all-linked': 0,
  };
  const counts = { kills: 0, completed: 0, versions: 0, dangling: 0, tempsAfterKills: 0, tempsLeft: 0 };

  const base = await mkdtemp(join(tmpdir(), 'pxecache-agent-crash-'));
  const root = join(base, 'tftpboot');
  const stateDir = join(base, 'tftpboot.state');
  let upstream: Upstream | undefined;
  let serve: ServeProcess | undefined;
  let tftpd: Tftpd | undefined;
  let readers: NameReaders | undefined;
  let agent: AgentProcess | undefined;
  let tap: BlobTap | undefined;
  try {
    upstream = await createUpstream();
    serve = await startServeProcess(join(base, 'store'), ['--host', '127.0.0.1']);
    tap = await startBlobTap(serve.url);
    const agentArgs = ['--source', tap.url, '--tftp-root', root, '--state-dir', stateDir];

    /** Blob bytes the agent has to download this cycle: a 'mid-blob' kill lands somewhere inside them. */
    let respunBytes = 0;
    /** Upstream respins `files`; serve fetches them (together, as Foreman asks for kernel and initrd). */
    const respin = async (files: readonly (typeof FILES)[number][]) => {
      await Promise.all(
        files.map(async (f) => {
          const name = nameOf(f);
          const old = history.get(name) ?? [];
          // Now and then upstream goes back to bytes it served before: the same content is the same version, whose
          // directory may still be on disk (or half-written by a killed agent).
          const reuse = old.length > 1 && random() < 0.1 ? old[Math.floor(random() * (old.length - 1))] : undefined;
          const bytes = reuse ?? randomBytes(minBytes + Math.floor(random() * (maxBytes - minBytes + 1)));
          const sha = sha256(bytes);
          published.get(name)?.add(sha); // before the publication: a read may see it as soon as it exists
          old.push(bytes);
          upstream?.set(f.urlPath, bytes);
          const status = await fetchNow(serve as ServeProcess, f.prefix, upstream?.url(f.urlPath) ?? '');
          if (status.sha256 !== sha) throw new Error(`${name}: serve published ${status.sha256}, upstream has ${sha}`);
          latest.set(name, sha);
          respunBytes += bytes.byteLength;
          counts.versions++;
        }),
      );
    };

    await respin(FILES);
    const first = await runAgentOnce(agentArgs);
    if (first.code !== 0) throw new Error(`the first agent --once exited ${first.code}:\n${first.output}`);
    tftpd = await startTftpd(root);
    readers = startNameReaders({ port: tftpd.port, names: NAMES, readers: opts.readers, published });
    await readers.fresh();

    /** Temporaries a killed agent left: each must be gone once the next agent logged "agent: started". */
    let stale: string[] = [];
    /** Measured (moving averages): spawn -> "agent: started", then -> its first "agent: sync done". Kill points are drawn within them. */
    const timing = { startupMs: 400, syncMs: 150 };

    for (let cycle = 1; cycle <= opts.cycles; cycle++) {
      respunBytes = 0;
      const picked = FILES.filter(() => random() < 0.6);
      const subset = picked.length ? picked : [FILES[cycle % FILES.length] as (typeof FILES)[number]];
      await respin(subset);

      readers.thaw();
      const spawnedAt = Date.now();
      const current = startAgentProcess([...agentArgs, '--interval', '0.2', '--wait', '5']);
      agent = current;
      const pendingStale = stale;
      let startedAt: number | null = null;
      let synced = false;
      let staleChecked: Promise<void> = Promise.resolve();
      current.onLine((line) => {
        if (line.msg === 'agent: sync done' && startedAt !== null && !synced) {
          synced = true;
          timing.syncMs = (timing.syncMs * 3 + (Date.now() - startedAt)) / 4;
        }
        if (line.msg !== 'agent: started' || startedAt !== null) return;
        startedAt = Date.now();
        timing.startupMs = (timing.startupMs * 3 + (startedAt - spawnedAt)) / 4;
        staleChecked = stillThere(root, stateDir, pendingStale).then((left) => {
          counts.tempsLeft += left.length;
          for (const p of left) problems.push(`cycle ${cycle}: ${p} survived the agent's start`);
        });
      });
      const point = pick(random);
      killsByPoint[point]++;
      const blobAt = Math.floor(random() * respunBytes);
      await killAt(point, current, random, timing, {
        inSync: () => linksCurrent(root, latest),
        midBlob: () => (tap as BlobTap).after(blobAt),
      });
      tap.disarm();
      await staleChecked;
      if (startedAt !== null) stale = [];
      counts.kills++;
      if (current.lines.some((l) => l.msg === 'agent: sync failed' || l.level === 'error')) {
        problems.push(`cycle ${cycle}: the agent logged a failure:\n${current.output().slice(-2000)}`);
      }

      // The root is frozen until the next agent starts: links must resolve, reads must be what they resolve to.
      const report = await inspectLinks(root, published);
      counts.dangling += report.dangling.length;
      for (const d of report.dangling) problems.push(`cycle ${cycle} (${point}): ${d}`);
      const temps = [
        ...(await tempsUnder(root)).map((p) => join(root, p)),
        ...(await tempsUnder(stateDir)).map((p) => join(stateDir, p)),
      ];
      counts.tempsAfterKills += temps.length;
      stale = [...new Set([...stale, ...temps])];
      const completed = NAMES.every((n) => report.serving.get(n) === latest.get(n));
      if (completed) counts.completed++;
      const state = await landing(root, subset, latest, report.serving, temps);
      killsByState[state]++;
      readers.freeze(report.serving);
      await readers.fresh();
      log(
        `cycle ${cycle}/${opts.cycles}: killed at ${point} (${state}), ` +
          `${temps.length} temps, ${readers.checked()} reads checked, ${problems.length} problems`,
      );
    }

    // A clean final sync: in sync, no temporaries anywhere, every link on the newest version.
    readers.thaw();
    const final = await runAgentOnce(agentArgs);
    if (final.code !== 0) problems.push(`the final agent --once exited ${final.code}:\n${final.output}`);
    const left = [...(await tempsUnder(root)), ...(await tempsUnder(stateDir))];
    counts.tempsLeft += left.length;
    for (const p of left) problems.push(`after the final sync: temporary ${p} left`);
    const report = await inspectLinks(root, published);
    counts.dangling += report.dangling.length;
    for (const d of report.dangling) problems.push(`after the final sync: ${d}`);
    for (const n of NAMES) {
      if (report.serving.get(n) !== latest.get(n))
        problems.push(`after the final sync: ${n} is not the newest version`);
    }
    readers.freeze(report.serving);
    await readers.fresh();
  } finally {
    await agent?.kill();
    await readers?.stop();
    await tftpd?.stop();
    await serve?.stop();
    await tap?.close();
    await upstream?.close();
    await rm(base, { recursive: true, force: true });
  }
  problems.push(...(readers?.bad ?? []), ...(readers?.failed ?? []));
  return {
    seed,
    cycles: opts.cycles,
    kills: counts.kills,
    killsByPoint,
    syncsCompletedBeforeKill: counts.completed,
    killsByState,
    versionsPublished: counts.versions,
    readsChecked: readers?.checked() ?? 0,
    frozenReadsChecked: readers?.frozenChecked() ?? 0,
    badReads: readers?.badCount() ?? 0,
    failedReads: readers?.failedCount() ?? 0,
    danglingLinks: counts.dangling,
    tempsAfterKills: counts.tempsAfterKills,
    tempsLeft: counts.tempsLeft,
    problems,
    durationMs: Date.now() - t0,
  };
}

/** Printable summary, for `npm run soak` and for the CI test's failure message. */
export function formatSummary(s: AgentCrashSummary): string {
  const list = (r: Record<string, number>) =>
    Object.entries(r)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  return [
    `agent crash soak: seed ${s.seed}, ${s.cycles} cycles in ${(s.durationMs / 1000).toFixed(1)} s`,
    `  kills ${s.kills} (aimed at: ${list(s.killsByPoint)}); syncs completed before the kill ${s.syncsCompletedBeforeKill}`,
    `  kills landed with: ${list(s.killsByState)}`,
    `  versions published ${s.versionsPublished}`,
    `  reads checked ${s.readsChecked} (${s.frozenReadsChecked} against a frozen root), bad reads ${s.badReads}, failed reads ${s.failedReads}`,
    `  dangling links ${s.danglingLinks}, temps after kills ${s.tempsAfterKills}, temps left ${s.tempsLeft}`,
    `  problems ${s.problems.length}${s.problems.length ? ':\n    ' + s.problems.slice(0, 20).join('\n    ') : ''}`,
  ].join('\n');
}

function pick(random: () => number): KillPoint {
  const r = random();
  return r < 0.1 ? 'startup' : r < 0.35 ? 'mid-sync' : r < 0.6 ? 'mid-blob' : r < 0.8 ? 'event' : 'completed';
}

/**
 * Kills the agent at the chosen point: during start-up (stale-temp sweep included), at a random moment within its
 * measured sync time, right after a random log event, or once every link serves the newest version.
 */
async function killAt(
  point: KillPoint,
  agent: AgentProcess,
  random: () => number,
  timing: { startupMs: number; syncMs: number },
  probes: { inSync: () => Promise<boolean>; midBlob: () => Promise<void> },
): Promise<void> {
  const started = () => agent.waitForLine('"agent: started"', (l) => l.msg === 'agent: started', CYCLE_TIMEOUT_MS);
  const syncDone = (l: AgentLine) => l.msg === 'agent: sync done';
  if (point === 'startup') {
    await sleep(random() * timing.startupMs);
  } else if (point === 'mid-sync') {
    await started();
    await sleep(random() * timing.syncMs * 1.1);
  } else if (point === 'mid-blob') {
    // Every version may already be on disk (upstream went back to older bytes): then the sync's end it is. The
    // loser of the race rejects once the agent is killed: handled here, so it is no unhandled rejection.
    const done = agent.waitForLine('"agent: sync done"', syncDone, CYCLE_TIMEOUT_MS);
    done.catch(() => undefined);
    await Promise.race([probes.midBlob(), done]);
  } else if (point === 'event') {
    const event = EVENTS[Math.floor(random() * EVENTS.length)] as string;
    // A pass may have nothing to collect or download: then the end of the sync is the kill point.
    await agent.waitForLine(
      `"${event}" or the end of the sync`,
      (l) => l.msg === event || syncDone(l),
      CYCLE_TIMEOUT_MS,
    );
    await sleep(random() * 5);
  } else {
    await started();
    for (let seen = 0; ;) {
      await agent.waitForLine(
        '"agent: sync done"',
        (l) => syncDone(l) && agent.lines.filter(syncDone).length > seen,
        CYCLE_TIMEOUT_MS,
      );
      seen = agent.lines.filter(syncDone).length;
      if (await probes.inSync()) break;
    }
  }
  await agent.kill();
}

/** How far the killed sync got with the names respun this cycle, judged from the disk. */
async function landing(
  root: string,
  respun: readonly (typeof FILES)[number][],
  latest: ReadonlyMap<string, string>,
  serving: ReadonlyMap<string, string>,
  temps: readonly string[],
): Promise<KillState> {
  const names = respun.map(nameOf);
  const linked = names.filter((n) => serving.get(n) === latest.get(n)).length;
  if (linked === names.length) return 'all-linked';
  if (linked > 0) return 'partly-linked';
  if (temps.some((t) => t.includes('-orig/'))) return 'mid-download';
  const present = await Promise.all(
    respun.map((f) => {
      const name = nameOf(f);
      const file = `${name}-orig/${latest.get(name)?.slice(0, 16)}/${f.urlPath.slice(f.urlPath.lastIndexOf('/') + 1)}`;
      return lstat(join(root, file)).then(
        (st) => st.isFile(),
        () => false,
      );
    }),
  );
  return present.some(Boolean) ? 'downloaded-not-linked' : 'nothing-new';
}

async function linksCurrent(root: string, latest: ReadonlyMap<string, string>): Promise<boolean> {
  const only = new Map([...latest].map(([n, sha]) => [n, new Set([sha])]));
  return (await inspectLinks(root, only)).dangling.length === 0;
}

async function stillThere(root: string, stateDir: string, paths: readonly string[]): Promise<string[]> {
  const now = new Set([
    ...(await tempsUnder(root)).map((p) => join(root, p)),
    ...(await tempsUnder(stateDir)).map((p) => join(stateDir, p)),
  ]);
  return paths.filter((p) => now.has(p));
}

async function fetchNow(serve: ServeProcess, prefix: string, url: string): Promise<{ sha256: string }> {
  const res = await fetch(`${serve.url}/api/v1/fetch?wait=30`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prefix, path: url }),
    signal: AbortSignal.timeout(40_000),
  });
  const body = (await res.json()) as { state?: string; sha256?: string };
  if (res.status !== 200 || body.state !== 'ready' || !body.sha256) {
    throw new Error(`POST /api/v1/fetch ${prefix} ${url}: ${res.status} ${JSON.stringify(body)}`);
  }
  return { sha256: body.sha256 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
