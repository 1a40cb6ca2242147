import { watch, type FSWatcher } from 'node:fs';
import { mkdtemp, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startServeProcess } from '../../helpers/serve-process.js';
import type { Row } from '../harness.js';
import { fetchReady, percentile, startAgentProcess, startVariedUpstream, type AgentProcess } from './agent-common.js';

const KiB = 1024;
const BASE = 'lat';
const NAME = `boot/${BASE}-vmlinuz`;

/** Wall-clock milliseconds with sub-millisecond resolution, comparable with the fetcher's ISO timestamps. */
const nowMs = () => performance.timeOrigin + performance.now();

/**
 * Central publish -> edge link swapped, with the agent long-polling (`--source http://...`, default --wait): a serve
 * (file store) and an agent run; `respins` times the upstream file changes, `POST /api/v1/fetch` publishes it, and the
 * edge's `<root>/<name>` link is watched (inotify plus a 2 ms readlink poll) until it names the new version. The
 * latency is swap time - publish time (the status's `fetchedAt`, taken just before the pointer write) - the time to
 * transfer the version's bytes (one GET of the blob right after, which the agent had to do too): what is left is the
 * agent's reaction time plus its verify/fsync/rename work.
 */
export async function agentPublishLatency(opts: { respins?: number; bytes?: number }): Promise<Row[]> {
  const respins = opts.respins ?? 20;
  const bytes = opts.bytes ?? 64 * KiB;
  const dir = await mkdtemp(join(tmpdir(), 'pxecache-bench-agent-latency-'));
  const upstream = await startVariedUpstream();
  const serve = await startServeProcess(join(dir, 'store'));
  const root = join(dir, 'root');
  let agent: AgentProcess | undefined;
  let link: LinkWatch | undefined;
  try {
    const url = upstream.url(bytes, BASE);
    const first = await fetchReady(serve.url, NAME, url);
    agent = startAgentProcess(['--source', serve.url, '--tftp-root', root]);
    await agent.waitForLog((l) => l['msg'] === 'agent: sync done', 60_000);
    link = await watchLink(join(root, 'boot'), `${BASE}-vmlinuz`);
    await link.until(versionOf(first.sha256), 10_000);

    const samples: number[] = [];
    const transfers: number[] = [];
    for (let i = 0; i < respins; i++) {
      // A pause of a few hundred ms: publications do not line up with anything the agent does on a schedule.
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 400));
      upstream.respin(BASE);
      const status = await fetchReady(serve.url, NAME, url);
      const swappedAt = await link.until(versionOf(status.sha256), 60_000);
      const transferMs = await timeBlobGet(serve.url, status.sha256);
      const ms = swappedAt - Date.parse(status.fetchedAt ?? '') - transferMs;
      samples.push(ms);
      transfers.push(transferMs);
      console.error(`  respin ${i + 1}/${respins}: ${ms.toFixed(1)} ms (transfer ${transferMs.toFixed(1)} ms)`);
    }
    const p50 = percentile(samples, 50);
    const p99 = percentile(samples, 99);
    const label = `agent publish -> edge swap, ${Math.round(bytes / KiB)} KiB, long-poll`;
    const note = `${respins} respins; minus the blob transfer (median ${percentile(transfers, 50).toFixed(1)} ms); max ${Math.max(...samples).toFixed(1)} ms`;
    return [
      row(`${label}: p50`, p50, 'report', null),
      { ...row(`${label}: p99`, p99, '<= 1000 ms', p99 <= 1000), note },
    ];
  } finally {
    link?.close();
    await agent?.stop();
    await serve.stop();
    upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function row(name: string, ms: number, target: string, met: boolean | null): Row {
  return { name, pxecache: ms, baseline: null, baselineName: '', unit: 'ms', peakRssMiB: null, target, met };
}

/** The version an edge link names: `<base>-orig/<version>/<file>` (DESIGN.md "Edge layout"). */
const versionOf = (sha256: string | null) => (sha256 ?? '').slice(0, 16);

/** Milliseconds to read the whole blob over the fetcher's API, as the agent does. */
async function timeBlobGet(serveUrl: string, sha256: string | null): Promise<number> {
  const t0 = nowMs();
  const res = await fetch(`${serveUrl}/api/v1/blobs/${sha256 ?? ''}`);
  if (res.status !== 200) throw new Error(`GET blob ${sha256}: ${res.status}`);
  await res.arrayBuffer();
  return nowMs() - t0;
}

interface LinkWatch {
  /** Resolves with the time `<dir>/<file>` was first seen naming `version`. */
  until(version: string, timeoutMs: number): Promise<number>;
  close(): void;
}

/**
 * Records when each target of the link was first seen. inotify reports the rename at once; the 2 ms readlink poll is
 * a safety net for an event coalesced or missed, and bounds the error of this measurement to 2 ms.
 */
async function watchLink(dir: string, file: string): Promise<LinkWatch> {
  const seen = new Map<string, number>();
  const waiters = new Set<() => void>();
  let reading = false;
  const look = async () => {
    if (reading) return;
    reading = true;
    const at = nowMs();
    const version = (await readlink(join(dir, file)).catch(() => '')).split('/')[1];
    reading = false;
    if (version !== undefined && !seen.has(version)) {
      seen.set(version, at);
      for (const w of waiters) w();
    }
  };
  const watcher: FSWatcher = watch(dir, (_event, changed) => {
    if (changed === file) void look();
  });
  const timer = setInterval(() => void look(), 2);
  await look();
  return {
    until: (version, timeoutMs) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const at = seen.get(version);
          if (at === undefined) return;
          clearTimeout(timeout);
          waiters.delete(check);
          resolve(at);
        };
        const timeout = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${file} did not point to version ${version} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close() {
      clearInterval(timer);
      watcher.close();
    },
  };
}
