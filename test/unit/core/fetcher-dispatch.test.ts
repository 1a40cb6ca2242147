/**
 * Dispatched jobs (FetcherDeps.dispatch), the shape Workers uses: the process that takes a job's lease writes its
 * `fetching` record and hands the job to another runner (a Workflow there, a second fetcher here), then waits on the
 * lease like any follower. Against a real upstream on loopback and one shared store.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFetcher, type DispatchedJob, type FetcherDeps } from '../../../src/core/fetcher.js';
import { createMemoryStore } from '../../../src/storage/memory-store.js';
import { loopbackClient, testFetcherDeps } from '../../helpers/fetcher-deps.js';
import { sha256 } from '../../helpers/api.js';
import { createUpstream, type Upstream } from '../../helpers/upstream.js';

let upstream: Upstream;
let client: ReturnType<typeof loopbackClient>;
beforeEach(async () => {
  upstream = await createUpstream();
  client = loopbackClient();
});
afterEach(async () => {
  await client.close();
  await upstream.close();
});

const deps = (store: FetcherDeps['store'], extra: Partial<FetcherDeps> = {}): FetcherDeps =>
  testFetcherDeps(store, client, { instanceId: 'front', followPollMs: 20, ...extra });

describe('dispatched fetch jobs', () => {
  it('records fetching, hands the job over as JSON, and every caller sees the runner publish it once', async () => {
    upstream.set('/vmlinuz', 'kernel v1');
    const store = createMemoryStore();
    const handed: DispatchedJob[] = [];
    const front = createFetcher(deps(store, { dispatch: async (job) => void handed.push(job) }));
    const runner = createFetcher(deps(store, { instanceId: 'workflow' }));

    const first = await front.submit({ prefix: 'boot/t', path: upstream.url('/vmlinuz') });
    const second = await front.submit({ prefix: 'boot/t', path: upstream.url('/vmlinuz') });
    expect(first.accepted.state).toBe('fetching');
    expect(second.accepted.state).toBe('fetching');
    // Nothing ran here: the job crossed as JSON (a Workflow's params) and waits for its runner.
    expect(handed).toHaveLength(1);
    expect(upstream.downloads('/vmlinuz')).toBe(0);
    // This process's part is over once the job is handed over (Lambda may freeze now), long before the job ends.
    let finished = false;
    void first.done.then(() => (finished = true));
    await Promise.all([first.started, second.started]);
    expect(finished).toBe(false);
    const job = JSON.parse(JSON.stringify(handed[0])) as DispatchedJob;
    expect(job).toMatchObject({ name: 'boot/t-vmlinuz', basename: 'vmlinuz', url: upstream.url('/vmlinuz') });

    const ran = await runner.runDispatched(job);
    expect(ran).toMatchObject({ state: 'ready', sha256: sha256('kernel v1'), generation: 1 });
    const [a, b] = await Promise.all([first.done, second.done]);
    expect(a).toMatchObject({ state: 'ready', sha256: sha256('kernel v1') });
    expect(b.version).toBe(a.version);
    expect(upstream.downloads('/vmlinuz')).toBe(1);
    // The lease is released: the next call revalidates (a 304) instead of joining anything.
    // A revalidation's part ends with upstream's answer (the job's own recheck after its download was a 304 too).
    const checked = upstream.notModified('/vmlinuz');
    const again = await front.submit({ prefix: 'boot/t', path: upstream.url('/vmlinuz') });
    await again.started;
    expect(upstream.notModified('/vmlinuz')).toBe(checked + 1);
    expect((await again.done).state).toBe('ready');
    expect(handed).toHaveLength(1);
  });

  // Regression (route suite on Lambda): a call made right after the job ended elsewhere, before this process had
  // looked at the lease again, joined the finished job and never revalidated, so a respin was never fetched.
  it('a call after the job ended elsewhere revalidates instead of joining it', async () => {
    upstream.set('/vmlinuz', 'kernel v1');
    const store = createMemoryStore();
    const handed: DispatchedJob[] = [];
    // This process looks at the lease only once a minute: it cannot have noticed the job's end.
    const front = createFetcher(deps(store, { followPollMs: 60_000, dispatch: async (job) => void handed.push(job) }));
    const runner = createFetcher(deps(store, { instanceId: 'workflow' }));
    const path = upstream.url('/vmlinuz');
    await (
      await front.submit({ prefix: 'boot/t', path })
    ).started;
    await runner.runDispatched(handed[0] as DispatchedJob);
    upstream.set('/vmlinuz', 'kernel v2');
    const respin = await front.submit({ prefix: 'boot/t', path });
    await respin.started;
    expect(handed).toHaveLength(2);
    expect(await runner.runDispatched(handed[1] as DispatchedJob)).toMatchObject({
      state: 'ready',
      sha256: sha256('kernel v2'),
      generation: 2,
    });
  });

  it('a dispatch that fails records the failure, frees the name and refuses the call', async () => {
    upstream.set('/initrd.img', 'initrd');
    const store = createMemoryStore();
    let refuse = true;
    const handed: DispatchedJob[] = [];
    const front = createFetcher(
      deps(store, {
        dispatch: async (job) => {
          if (refuse) throw new Error('workflow binding unavailable');
          handed.push(job);
        },
      }),
    );
    await expect(front.submit({ prefix: 'boot/t', path: upstream.url('/initrd.img') })).rejects.toThrow(
      /workflow binding unavailable/,
    );
    const failed = await front.status('boot/t-initrd.img');
    expect(failed).toMatchObject({ state: 'failed', error: { message: expect.stringContaining('unavailable') } });
    refuse = false;
    const retried = await front.submit({ prefix: 'boot/t', path: upstream.url('/initrd.img') });
    expect(retried.accepted.state).toBe('fetching');
    expect(handed).toHaveLength(1);
  });
});
