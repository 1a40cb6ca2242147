/**
 * The agent's site reports (agent/site-reporter.ts) through a real agent pass on a temp root: versions read from the
 * links, failures with their message, heartbeats while nothing changes, and a refused report that never fails a sync.
 */
import { rm } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAgent } from '../../../src/agent/sync.js';
import type { FakeSource, TempRoot } from '../../helpers/agent-fixtures.js';
import { entryFor, fakeSource, memoryLogger, nodeHasher, serve, tempRoot } from '../../helpers/agent-fixtures.js';
import { waitFor } from '../../helpers/wait.js';

const KERNEL = 'boot/alpha-vmlinuz';
const INITRD = 'boot/beta-initrd.img';

let t: TempRoot;
let src: FakeSource;
let logger: ReturnType<typeof memoryLogger>;
const newAgent = (intervalSeconds = 60) =>
  createAgent({
    source: src,
    root: t.root,
    stateDir: t.stateDir,
    site: 'east',
    hasher: nodeHasher,
    logger,
    report: { agent: { id: 'edge-1', version: '9.9.9' }, intervalSeconds },
  });

beforeEach(async () => {
  t = await tempRoot();
  src = fakeSource();
  src.publishConfigs('east', []);
  logger = memoryLogger();
});
afterEach(async () => {
  await rm(t.base, { recursive: true, force: true });
});

describe('agent site reports', () => {
  it('reports the linked versions, a failed name with its message and the previous version, and free disk', async () => {
    const k1 = entryFor(KERNEL, 'kernel-1');
    const i1 = entryFor(INITRD, 'initrd-1');
    serve(src, [
      [k1, 'kernel-1'],
      [i1, 'initrd-1'],
    ]);
    const agent = newAgent();
    await agent.start();
    await agent.syncOnce();
    expect(src.reports).toHaveLength(1);
    const first = src.reports[0]!;
    expect(first).toMatchObject({
      site: 'east',
      agent: { id: 'edge-1', version: '9.9.9' },
      lastSyncOk: true,
      configs: { ok: true, failed: 0 },
      errors: [],
      intervalSeconds: 60,
    });
    expect(first.files).toEqual([
      { name: KERNEL, version: k1.version, state: 'synced' },
      { name: INITRD, version: i1.version, state: 'synced' },
    ]);
    expect(first.disk!.totalBytes).toBeGreaterThan(0);

    // A new kernel whose bytes are corrupt: the link keeps the old version, the report says why.
    const k2 = entryFor(KERNEL, 'kernel-2', [k1.version]);
    serve(src, [
      [k2, 'kernel-2'],
      [i1, 'initrd-1'],
    ]);
    src.blobs.set(k2.sha256, new TextEncoder().encode('corrupted'));
    await agent.syncOnce();
    const second = src.reports.at(-1)!;
    expect(second.lastSyncOk).toBe(false);
    expect(second.files[0]).toMatchObject({ name: KERNEL, version: k1.version, state: 'failed' });
    expect(second.files[0]!.message).toMatch(/sha256|size|integrity/i);
    expect(Date.parse(second.lastSyncAt!)).toBeGreaterThanOrEqual(Date.parse(first.lastSyncAt!));
  });

  it('heartbeats while nothing changes; a refused report is logged once per distinct error and fails no sync', async () => {
    serve(src, [[entryFor(KERNEL, 'kernel-1'), 'kernel-1']]);
    let refusals = 0;
    src.report = async () => {
      refusals++;
      throw new Error('401 the bearer token is not valid');
    };
    const agent = newAgent(0.05);
    await agent.start();
    const stop = new AbortController();
    const running = agent.run({ intervalMs: 20, waitSeconds: 0, signal: stop.signal });
    await waitFor('several refused heartbeats', async () => ({ done: refusals >= 4, value: refusals }));
    stop.abort();
    await running;
    const warnings = logger.lines.filter((l) => l.msg === 'agent: cannot send site report');
    expect(warnings).toHaveLength(1);
    expect(logger.lines.some((l) => l.msg === 'agent: sync failed')).toBe(false);
    expect(logger.lines.some((l) => l.msg === 'agent: sync done')).toBe(true);
  });
});
