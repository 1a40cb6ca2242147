/**
 * Issue "Reliability", upstream fault catalog: every way a real mirror misbehaves, against a real upstream server on
 * loopback and the real app (file store). For each fault, after a good version is published: the fetch ends
 * `failed` with an error code, nothing is published (same version, same generation, no new data object), the
 * previous bytes still come back from the blob route, and /metrics counts the failure by its code. A mirror respun
 * during a download is caught by checking the validators again afterwards: the new file is fetched instead, once.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileStatus } from '../../src/core/records.js';
import { bytesOf, getStatus, sha256 } from '../helpers/api.js';
import { createHarness, type Harness } from '../helpers/app-harness.js';
import { deferred } from '../helpers/wait.js';
import { createUpstream, type Upstream, type UpstreamFileOptions } from '../helpers/upstream.js';

const GOOD = bytesOf('good v1', 256 * 1024);

/** pxecache_<name>{labels} from the Prometheus text exposition (0 when the series is absent). */
function counter(text: string, name: string, labels = ''): number {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const [series, value] = line.split(' ');
    if (series === `${name}${labels}`) return Number(value);
  }
  return 0;
}

describe('upstream fault catalog', () => {
  let upstream: Upstream;
  let h: Harness;

  beforeAll(async () => {
    upstream = await createUpstream();
    // Short limits so the stall and the trickle end in about a second; everything else as shipped.
    h = await createHarness({ transport: 'app.request', settings: { 'idle-timeout': 1, 'fetch-timeout': 2 } });
  });
  afterAll(async () => {
    await h.close();
    await upstream.close();
  });

  const metrics = async () => (await h.request('/metrics')).text();
  /** Responses with a body begun since request number `from` (every path here is used by one test only). */
  const sending = (from: number) => upstream.requests.slice(from).filter((r) => r.bodyBytes > 0).length;

  /** POST /api/v1/fetch?wait: the final status. */
  async function fetchNow(name: string, path: string): Promise<FileStatus> {
    const res = await h.request('/api/v1/fetch?wait=30', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name, url: upstream.url(path) }),
    });
    return (await res.json()) as FileStatus;
  }

  async function dataObjects(): Promise<number> {
    return (await readdir(join(h.storeDir, 'data')).catch(() => [])).filter((f) => !f.startsWith('.')).length;
  }

  async function blob(sha: string): Promise<Buffer> {
    const res = await h.request(`/api/v1/blobs/${sha}`);
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  }

  const FAULTS: [string, string, (path: string) => void][] = [
    ['truncated body (connection reset mid-body)', 'truncated', (p) => set(p, { truncateAt: 100_000 })],
    ['body ends cleanly short of its Content-Length', 'truncated', (p) => set(p, { endAt: 100_000 })],
    ['stalled body (idle timeout)', 'timeout', (p) => set(p, { bodyGate: new Promise(() => {}), chunkSize: 65536 })],
    ['connection reset before any answer', 'reset', (p) => set(p, { reset: true })],
    ['500', 'upstream-status', (p) => set(p, { status: 500 })],
    ['503', 'upstream-status', (p) => set(p, { status: 503 })],
    [
      '404 with an HTML page',
      'upstream-status',
      (p) =>
        set(p, { status: 404, errorBody: { body: '<html><body>Not Found</body></html>', contentType: 'text/html' } }),
    ],
    ['redirect loop', 'too-many-redirects', (p) => set(p, { redirectTo: p })],
    ['very slow trickle (never idle, never done)', 'timeout', (p) => set(p, { chunkDelayMs: 200, chunkSize: 1024 })],
  ];
  // A changed file (new ETag) so the fault is what answers, not a 304.
  const set = (p: string, opts: UpstreamFileOptions) => upstream.set(p, bytesOf(`changed ${p}`, GOOD.length), opts);

  it.each(FAULTS)(
    '%s: failed (%s), nothing published, the previous version served, counted',
    async (_, code, fault) => {
      const path = `/faults/${code}-${Math.random().toString(36).slice(2, 8)}/vmlinuz`;
      const name = `boot/faults-${path.split('/')[2]}-vmlinuz`;
      upstream.set(path, GOOD);
      const before = await fetchNow(name, path);
      expect(before).toMatchObject({ state: 'ready', sha256: sha256(GOOD) });
      const objects = await dataObjects();
      const counted = counter(await metrics(), 'pxecache_fetch_errors_total', `{code="${code}"}`);

      fault(path);
      const after = await fetchNow(name, path);
      expect(after.state).toBe('failed');
      expect(after.error?.code).toBe(code);
      expect(after.version).toBe(before.version);
      expect(after.generation).toBe(before.generation);
      expect(await dataObjects()).toBe(objects);
      expect(sha256(await blob(sha256(GOOD)))).toBe(sha256(GOOD));
      expect(counter(await metrics(), 'pxecache_fetch_errors_total', `{code="${code}"}`)).toBe(counted + 1);
    },
  );

  it('a respin during the download: discarded, the new file fetched instead and published', async () => {
    const path = '/respin/once/initrd.img';
    const name = 'boot/respin-once-initrd.img';
    upstream.set(path, GOOD);
    expect((await fetchNow(name, path)).state).toBe('ready');
    const respins = counter(await metrics(), 'pxecache_upstream_respins_total');

    // The mirror is mid-sync: the download starts on one file and the mirror swaps in another before it ends.
    const held = deferred();
    const mixed = bytesOf('respin A', GOOD.length);
    upstream.set(path, mixed, { bodyGate: held.promise, chunkSize: 65536 });
    const requestsBefore = upstream.count(path);
    const from = upstream.requests.length;
    const done = fetchNow(name, path);
    await waitUntil(() => sending(from) >= 1);
    const fresh = bytesOf('respin B', GOOD.length);
    upstream.set(path, fresh);
    held.resolve();

    const status = await done;
    expect(status).toMatchObject({ state: 'ready', sha256: sha256(fresh), error: null });
    // The download, the check that found B (whose body became the new download), the check that confirmed B.
    expect(upstream.count(path) - requestsBefore).toBe(3);
    expect(status.versions.map((v) => v.sha256)).not.toContain(sha256(mixed));
    expect(counter(await metrics(), 'pxecache_upstream_respins_total')).toBe(respins + 1);
  });

  it('upstream changing during every download: failed (upstream-changing), nothing published', async () => {
    const path = '/respin/always/initrd.img';
    const name = 'boot/respin-always-initrd.img';
    upstream.set(path, GOOD);
    const before = await fetchNow(name, path);
    const objects = await dataObjects();

    // Each response's body is held until the test has put a newer file in place: every check finds a change.
    let n = 0;
    const respinEach = () => {
      const gate = deferred();
      upstream.set(path, bytesOf(`flapping ${n++}`, GOOD.length), { bodyGate: gate.promise, chunkSize: 65536 });
      return gate;
    };
    let gate = respinEach();
    const from = upstream.requests.length;
    const done = fetchNow(name, path);
    for (let i = 0; i < 2; i++) {
      await waitUntil(() => sending(from) >= i + 1);
      const release = gate;
      gate = respinEach();
      release.resolve();
    }
    gate.resolve();
    const after = await done;
    expect(after).toMatchObject({ state: 'failed', version: before.version, generation: before.generation });
    expect(after.error?.code).toBe('upstream-changing');
    expect(await dataObjects()).toBe(objects);
    expect((await getStatus(h.request.bind(h), name)).body.sha256).toBe(sha256(GOOD));
  });

  it('/metrics is Prometheus text with every series named pxecache_*', async () => {
    const res = await h.request('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
      // Counters are integers; histogram sums and process metrics (CPU seconds, NaN event-loop lag before a sample) not.
      expect(line).toMatch(
        /^pxecache_[a-z0-9_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (-?\d+(\.\d+)?(e[-+]?\d+)?|NaN|[+-]Inf)$/,
      );
    }
    expect(counter(text, 'pxecache_fetches_total', '{result="published"}')).toBeGreaterThan(0);
    expect(counter(text, 'pxecache_upstream_bytes_total')).toBeGreaterThan(0);
  });
});

async function waitUntil(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error('condition not reached within 10 s');
}
