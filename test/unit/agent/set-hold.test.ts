/**
 * Respin sets at the edge (agent/set-hold.ts, set-swaps.ts): a set's links move in one pass, back to back and
 * measured; a set with a member still fetching at the source waits (up to --set-hold) while its bytes download.
 */
import { readFile, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAgent, type AgentOptions } from '../../../src/agent/sync.js';
import {
  entryFor,
  fakeSource,
  memoryLogger,
  nodeHasher,
  serve,
  tempRoot,
  type FakeSource,
  type TempRoot,
} from '../../helpers/agent-fixtures.js';
import { waitFor } from '../../helpers/wait.js';

const KERNEL = 'boot/centos-9-AbCd-vmlinuz';
const INITRD = 'boot/centos-9-AbCd-initrd.img';
const OTHER = 'boot/alma-9-XyZw-vmlinuz';
const PREFIX = 'boot/centos-9-AbCd';

let t: TempRoot;
let src: FakeSource;
beforeEach(async () => {
  t = await tempRoot();
  src = fakeSource();
});
afterEach(async () => {
  await rm(t.base, { recursive: true, force: true });
});

const k1 = entryFor(KERNEL, 'kernel-1');
const i1 = entryFor(INITRD, 'initrd-1', [], 'initrd.img');
const k2 = entryFor(KERNEL, 'kernel-2', [k1.version]);
const i2 = entryFor(INITRD, 'initrd-2', [i1.version], 'initrd.img');
const o1 = entryFor(OTHER, 'other-1');
const target = (name: string, version: string, basename: string) =>
  `${name.slice(name.lastIndexOf('/') + 1)}-orig/${version}/${basename}`;
const link = (name: string) => readlink(join(t.root, name));

async function startedAgent(extra: Partial<AgentOptions> = {}) {
  const logger = memoryLogger();
  const agent = createAgent({ source: src, root: t.root, stateDir: t.stateDir, hasher: nodeHasher, logger, ...extra });
  await agent.start();
  serve(src, [
    [k1, 'kernel-1'],
    [i1, 'initrd-1'],
    [o1, 'other-1'],
  ]);
  const first = await agent.syncOnce();
  expect(first.ok).toBe(true);
  return { agent, logger };
}

/** Prometheus text as `series -> value` (the textfile collector's input). */
function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

const publishAll = (...items: [ReturnType<typeof entryFor>, string][]) => serve(src, items);

const until = (what: string, ok: () => boolean | Promise<boolean>) =>
  waitFor(what, async () => ({ done: await ok(), value: src.stateCalls.length }), { timeoutMs: 10_000 });

describe('respin sets at the edge', () => {
  it('moves the changed members of a set in one pass, reports the window, and counts it in metrics.prom', async () => {
    const { agent } = await startedAgent();
    const before = parseProm(await readFile(join(t.stateDir, 'metrics.prom'), 'utf8'));
    // The first sync moved two sets: this one and the other prefix's.
    expect(before.get('pxecache_agent_set_swaps_total')).toBe(2);

    publishAll([k2, 'kernel-2'], [i2, 'initrd-2'], [o1, 'other-1']);
    const report = await agent.syncOnce();
    expect(report.ok).toBe(true);
    expect(report.setSwaps).toHaveLength(1);
    expect(report.setSwaps[0]).toMatchObject({ prefix: PREFIX, names: [KERNEL, INITRD] });
    const windowNs = report.setSwaps[0]?.windowNs ?? -1;
    expect(windowNs).toBeGreaterThan(0);
    expect(await link(KERNEL)).toBe(target(KERNEL, k2.version, 'vmlinuz'));
    expect(await link(INITRD)).toBe(target(INITRD, i2.version, 'initrd.img'));

    const after = parseProm(await readFile(join(t.stateDir, 'metrics.prom'), 'utf8'));
    expect(after.get('pxecache_agent_set_swaps_total')).toBe(3);
    expect(after.get('pxecache_agent_set_swap_window_seconds_count')).toBe(3);
    expect(after.get('pxecache_agent_set_swap_window_seconds_bucket{le="+Inf"}')).toBe(3);
    const sum =
      (after.get('pxecache_agent_set_swap_window_seconds_sum') ?? 0) -
      (before.get('pxecache_agent_set_swap_window_seconds_sum') ?? 0);
    expect(sum).toBeCloseTo(windowNs / 1e9, 9);
    expect(after.get('pxecache_agent_set_swap_window_max_seconds')).toBeGreaterThanOrEqual(windowNs / 1e9);
    const state = JSON.parse(await readFile(join(t.stateDir, 'agent-last-sync.json'), 'utf8')) as {
      setSwaps: unknown;
    };
    expect(state.setSwaps).toEqual(report.setSwaps);
  });

  it('holds a set while a member is fetching at the source, downloading meanwhile, then moves both in one pass', async () => {
    const { agent, logger } = await startedAgent();
    src.states.set(INITRD, 'fetching');
    publishAll([k2, 'kernel-2'], [i1, 'initrd-1'], [o1, 'other-1']);
    const once = agent.syncOnce();
    // The kernel's new version is on disk, its link is not moved.
    const kernelFile = join(t.root, 'boot', target(KERNEL, k2.version, 'vmlinuz'));
    await until('the held kernel downloaded', () =>
      readFile(kernelFile).then(
        () => true,
        () => false,
      ),
    );
    await until('a second look at the held set', () => src.stateCalls.filter((n) => n === INITRD).length >= 3);
    expect(await link(KERNEL)).toBe(target(KERNEL, k1.version, 'vmlinuz'));
    const held = JSON.parse(await readFile(join(t.stateDir, 'agent-last-sync.json'), 'utf8')) as { held: string[] };
    expect(held.held).toEqual([KERNEL]);

    publishAll([k2, 'kernel-2'], [i2, 'initrd-2'], [o1, 'other-1']);
    src.states.delete(INITRD);
    const report = await once;
    expect(report.held).toEqual([]);
    expect(report.setSwaps).toMatchObject([{ prefix: PREFIX, names: [KERNEL, INITRD] }]);
    expect(await link(KERNEL)).toBe(target(KERNEL, k2.version, 'vmlinuz'));
    expect(await link(INITRD)).toBe(target(INITRD, i2.version, 'initrd.img'));
    expect(logger.lines.map((l) => l.msg)).toContain('agent: set complete; swapping');
    const prom = parseProm(await readFile(join(t.stateDir, 'metrics.prom'), 'utf8'));
    expect(prom.get('pxecache_agent_set_holds_total{result="complete"}')).toBe(1);
  });

  it('gives up holding after --set-hold and moves what is ready', async () => {
    let now = 1_000_000;
    const { agent, logger } = await startedAgent({ setHoldMs: 5000, clock: { now: () => now } });
    src.states.set(INITRD, 'fetching');
    publishAll([k2, 'kernel-2'], [i1, 'initrd-1'], [o1, 'other-1']);
    const once = agent.syncOnce();
    await until('the set held', () => src.stateCalls.filter((n) => n === INITRD).length >= 2);
    expect(await link(KERNEL)).toBe(target(KERNEL, k1.version, 'vmlinuz'));
    now += 5000;
    const report = await once;
    expect(report.setSwaps).toMatchObject([{ prefix: PREFIX, names: [KERNEL] }]);
    expect(await link(KERNEL)).toBe(target(KERNEL, k2.version, 'vmlinuz'));
    expect(logger.lines.find((l) => l.msg === 'agent: set hold expired; swapping what is ready')).toMatchObject({
      level: 'warn',
      fields: { prefix: PREFIX, fetching: [INITRD], heldMs: 5000 },
    });
  });

  it('--set-hold 0 moves at once, without asking the source', async () => {
    const { agent } = await startedAgent({ setHoldMs: 0 });
    src.states.set(INITRD, 'fetching');
    const calls = src.stateCalls.length;
    publishAll([k2, 'kernel-2'], [i1, 'initrd-1'], [o1, 'other-1']);
    const report = await agent.syncOnce();
    expect(report.setSwaps).toMatchObject([{ prefix: PREFIX, names: [KERNEL] }]);
    expect(await link(KERNEL)).toBe(target(KERNEL, k2.version, 'vmlinuz'));
    expect(src.stateCalls.length).toBe(calls);
  });

  it('a member fetching in another set, the moved member itself, or a source that cannot answer, holds nothing', async () => {
    const { agent, logger } = await startedAgent();
    src.states.set(OTHER, 'fetching');
    // Published, and its status not yet back to ready (the fetcher writes the pointer first): nothing to wait for.
    src.states.set(KERNEL, 'fetching');
    publishAll([k2, 'kernel-2'], [i1, 'initrd-1'], [o1, 'other-1']);
    expect((await agent.syncOnce()).setSwaps).toMatchObject([{ prefix: PREFIX, names: [KERNEL] }]);

    src.fileState = () => Promise.reject(new Error('503 from the fetcher'));
    publishAll([k2, 'kernel-2'], [i2, 'initrd-2'], [o1, 'other-1']);
    expect((await agent.syncOnce()).setSwaps).toMatchObject([{ prefix: PREFIX, names: [INITRD] }]);
    expect(logger.lines.map((l) => l.msg)).toContain('agent: set members state unknown; swapping without holding');
  });
});
