import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServeProcess } from '../../helpers/serve-process.js';
import type { Row } from '../harness.js';
import {
  cpuSeconds,
  publishAll,
  startAgentProcess,
  startCountingProxy,
  startVariedUpstream,
  type AgentProcess,
  type CountingProxy,
} from './agent-common.js';

const CHANGES = '/api/v1/changes';
/**
 * The agent's long-poll wait for the measurement, seconds. The default (30 s) would make each idle poll last 30 s;
 * 1 s (the smallest the option takes) keeps the same code path and makes a measurement of N polls take N seconds.
 */
const WAIT_S = 1;

/**
 * What an idle edge costs: a `pxecache serve` (file store) holding `names` published names, an agent
 * (`--source http://...`, long-poll) that has synced them all once, then nothing changes for `polls` polls. Counted at
 * a proxy in front of serve (every request the agent makes) and from the agent's /proc/<pid>/stat (user + system CPU
 * time): requests per poll and CPU per poll must not grow with the number of names.
 */
export async function agentIdlePoll(opts: { names?: number; polls?: number }): Promise<Row[]> {
  const names = opts.names ?? 10_000;
  const polls = opts.polls ?? 30;
  const dir = await mkdtemp(join(tmpdir(), 'pxecache-bench-agent-idle-'));
  const upstream = await startVariedUpstream();
  const serve = await startServeProcess(join(dir, 'store'));
  let proxy: CountingProxy | undefined;
  let agent: AgentProcess | undefined;
  try {
    // Tiny files: this case is about the number of names, not their bytes.
    const items = Array.from({ length: names }, (_, i) => {
      const base = `f${String(i).padStart(5, '0')}`;
      return { name: `boot/idle-${base}-vmlinuz`, url: upstream.url(512, base) };
    });
    await publishAll(serve.url, items, 32);
    proxy = await startCountingProxy(serve.url);
    const root = join(dir, 'root');
    const t0 = Date.now();
    agent = startAgentProcess([
      '--source',
      proxy.url,
      '--tftp-root',
      root,
      '--wait',
      String(WAIT_S),
      '--interval',
      '1',
    ]);
    const first = await agent.waitForLog((l) => l['msg'] === 'agent: sync done' && l['full'] === true, 30 * 60_000);
    if (first['updated'] !== names) throw new Error(`first sync updated ${String(first['updated'])} of ${names}`);
    console.error(`  agent synced ${names} names in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const m = await measure(proxy, agent.pid, polls);
    const perPoll = m.requests / polls;
    const cpuMs = (m.cpuSeconds * 1000) / polls;
    const byPath = [...m.byPath].map(([p, n]) => `${p} x${n}`).join(', ');
    const note = `${polls} idle polls of ${names} names, --wait ${WAIT_S} (long-poll shortened from 30 s), one every ${(m.seconds / polls).toFixed(2)} s; requests: ${byPath}`;
    return [
      {
        name: `agent idle poll, ${names} names: requests per poll`,
        pxecache: perPoll,
        baseline: null,
        baselineName: '',
        unit: 'req',
        peakRssMiB: null,
        target: '1',
        met: perPoll <= 1,
        note,
      },
      {
        name: `agent idle poll, ${names} names: CPU per poll`,
        pxecache: cpuMs,
        baseline: null,
        baselineName: '',
        unit: 'ms',
        peakRssMiB: null,
        target: '<= 20 ms',
        met: cpuMs <= 20,
      },
    ];
  } finally {
    await agent?.stop();
    proxy?.close();
    await serve.stop();
    upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * From the start of one poll (its change-feed request reaching the proxy) to the start of the poll `polls` later:
 * exactly `polls` whole poll cycles, whatever each one does besides that request.
 */
async function measure(
  proxy: CountingProxy,
  pid: number,
  polls: number,
): Promise<{ requests: number; byPath: Map<string, number>; cpuSeconds: number; seconds: number }> {
  return new Promise((resolve) => {
    let seen = -1;
    let cpu0 = 0;
    let t0 = 0;
    proxy.onRequest = (url) => {
      if (!url.startsWith(`${CHANGES}?`)) return;
      // Only a delta poll starts the window: a poll without a cursor is a full resync (slow first sync only).
      if (seen < 0 && !url.includes('since=')) return;
      seen++;
      if (seen === 0) {
        // Everything before this poll (the first sync, the poll after it) is not counted.
        proxy.reset();
        proxy.counts.set(CHANGES, 1);
        cpu0 = cpuSeconds(pid);
        t0 = Date.now();
      } else if (seen === polls) {
        const cpu = cpuSeconds(pid) - cpu0;
        proxy.onRequest = null;
        // The request that ends the window belongs to the next poll.
        proxy.counts.set(CHANGES, (proxy.counts.get(CHANGES) ?? 1) - 1);
        resolve({
          requests: proxy.total(),
          byPath: new Map(proxy.counts),
          cpuSeconds: cpu,
          seconds: (Date.now() - t0) / 1000,
        });
      }
    };
  });
}
