/**
 * Issue 10, metrics and logs, against a real `pxecache serve` process and a real upstream on loopback: /metrics read
 * with a Prometheus text-format parser moves as the test acts (a download, a 304 revalidation, two concurrent callers
 * coalesced, a failure by its code, the publish latency histogram), and one X-Request-Id follows a fetch in the
 * process's stderr from the HTTP request to the publish line.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileStatus } from '../../src/core/records.js';
import { bytesOf } from '../helpers/api.js';
import { parseMetrics } from '../helpers/prometheus.js';
import { startServeProcess, type LogLine, type ServeProcess } from '../helpers/serve-process.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { startAgentProcess } from '../reliability/agent-process.js';
import { deferred, waitFor } from '../helpers/wait.js';

describe('metrics and request ids, pxecache serve', () => {
  let dir: string;
  let up: Upstream;
  let serve: ServeProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pxecache-observability-'));
    up = await createUpstream();
    serve = await startServeProcess(join(dir, 'store'));
  });
  afterAll(async () => {
    await serve?.stop();
    await up?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const scrape = async () => {
    const res = await fetch(`${serve.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseMetrics(await res.text());
  };
  const fetchApi = (path: string, requestId: string, wait = 20) =>
    fetch(`${serve.url}/api/v1/fetch?wait=${wait}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify({ prefix: 'boot/obs', path: up.url(path) }),
    });
  const linesOf = (requestId: string) => serve.logs.filter((l) => l['requestId'] === requestId);

  it('counts a download, a 304 revalidation and a failure by its code; publish latency is observed', async () => {
    const bytes = bytesOf('obs kernel', 300_000);
    up.set('/obs/vmlinuz', bytes);
    const before = await scrape();
    expect((await fetchApi('/obs/vmlinuz', 'obs-download')).status).toBe(200);
    let after = await scrape();
    const moved = (name: string, labels?: Record<string, string>) =>
      after.value(name, labels) - before.value(name, labels);
    expect(moved('pxecache_fetches_total', { result: 'published' })).toBe(1);
    expect(moved('pxecache_upstream_bytes_total')).toBe(bytes.length);
    expect(after.count('pxecache_publish_duration_seconds') - before.count('pxecache_publish_duration_seconds')).toBe(
      1,
    );
    expect(moved('pxecache_upstream_not_modified_total')).toBe(0);

    const notModified = up.notModified('/obs/vmlinuz');
    expect((await fetchApi('/obs/vmlinuz', 'obs-revalidate')).status).toBe(200);
    expect(up.notModified('/obs/vmlinuz')).toBe(notModified + 1);
    after = await scrape();
    expect(moved('pxecache_upstream_not_modified_total')).toBe(1);
    expect(moved('pxecache_fetches_total', { result: 'not_modified' })).toBe(1);
    expect(moved('pxecache_upstream_bytes_total')).toBe(bytes.length);

    up.set('/obs/missing', 'gone', { status: 404 });
    const failed = await fetchApi('/obs/missing', 'obs-fail');
    expect(failed.status).toBe(502);
    const code = ((await failed.json()) as FileStatus).error?.code;
    expect(code).toBeTruthy();
    after = await scrape();
    expect(moved('pxecache_fetch_errors_total', { code: code! })).toBe(1);
    expect(moved('pxecache_fetches_total', { result: 'failed' })).toBe(1);
    // Every family is pxecache_*, prom-client's process metrics included.
    expect(after.families.every((f) => f.name.startsWith('pxecache_'))).toBe(true);
    expect(after.has('pxecache_process_resident_memory_bytes')).toBe(true);
  });

  it('counts a caller that joined a running job, and logs its own request id with the job id', async () => {
    const gate = deferred();
    up.set('/obs/initrd.img', bytesOf('obs initrd', 200_000), { gate: gate.promise });
    const before = await scrape();
    const first = await fetchApi('/obs/initrd.img', 'obs-leader', 0);
    expect(first.status).toBe(202);
    const second = await fetchApi('/obs/initrd.img', 'obs-joiner', 0);
    expect(second.status).toBe(202);
    gate.resolve();
    await waitFor('initrd published', async () => ({
      done: linesOf('obs-leader').some((l) => l.msg === 'published'),
      value: linesOf('obs-leader').map((l) => l.msg),
    }));
    const after = await scrape();
    expect(
      after.value('pxecache_fetch_coalesced_total', { via: 'process' }) -
        before.value('pxecache_fetch_coalesced_total', { via: 'process' }),
    ).toBe(1);
    expect(up.downloads('/obs/initrd.img')).toBe(1);
    const started = linesOf('obs-leader').find((l) => l.msg === 'fetch started');
    const joined = linesOf('obs-joiner').find((l) => l.msg === 'fetch joined');
    expect(joined).toMatchObject({ jobId: started?.['jobId'], via: 'process', name: 'boot/obs-initrd.img' });
  });

  it('one X-Request-Id follows a Foreman fetch_boot_file from the HTTP request to the publish line', async () => {
    up.set('/obs/grubx64.efi', bytesOf('obs grub', 50_000));
    const id = 'foreman-7f3a.trace:1';
    const res = await fetch(`${serve.url}/tftp/fetch_boot_file`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': id },
      body: new URLSearchParams({ prefix: 'boot/obs', path: up.url('/obs/grubx64.efi') }).toString(),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(id);
    await waitFor('grub published', async () => ({
      done: linesOf(id).some((l) => l.msg === 'published'),
      value: linesOf(id).map((l) => l.msg),
    }));
    const lines = linesOf(id);
    // The job starts before the route logs its acceptance: the set of lines matters, not their order.
    expect(lines.map((l) => l.msg).sort()).toEqual(['fetch started', 'fetch_boot_file accepted', 'published']);
    const jobIds = new Set(lines.filter((l: LogLine) => l.msg !== 'fetch_boot_file accepted').map((l) => l['jobId']));
    expect([...jobIds]).toHaveLength(1);
    expect(typeof [...jobIds][0]).toBe('string');
    expect(lines.every((l) => typeof l['time'] === 'string' && typeof l['level'] === 'string')).toBe(true);
  });

  it('replaces an unusable X-Request-Id with its own, and gives every response one', async () => {
    const long = 'x'.repeat(65);
    for (const given of [long, 'has space', 'semi;colon']) {
      const res = await fetch(`${serve.url}/healthz`, { headers: { 'x-request-id': given } });
      const answered = res.headers.get('x-request-id');
      expect(answered).toMatch(/^[0-9a-f-]{36}$/);
    }
    const missing = await fetch(`${serve.url}/no/such/route`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const blob = await fetch(`${serve.url}/api/v1/files/boot/obs-vmlinuz`);
    expect(blob.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("gauges a site's sync lag from the report its real agent sent, computed at scrape time", async () => {
    expect((await scrape()).has('pxecache_site_sync_lag_seconds', { site: 'default' })).toBe(false);
    const root = join(dir, 'tftpboot');
    const agent = startAgentProcess([
      ...['--source', serve.url, '--tftp-root', root, '--site', 'default', '--interval', '0.2'],
      ...['--report-interval', '1'],
    ]);
    try {
      const first = await waitFor(
        'a lag sample for site default',
        async () => {
          const s = await scrape();
          return { done: s.has('pxecache_site_sync_lag_seconds', { site: 'default' }), value: s };
        },
        { timeoutMs: 20_000 },
      );
      const lag = first.value('pxecache_site_sync_lag_seconds', { site: 'default' });
      expect(lag).toBeGreaterThanOrEqual(0);
      expect(lag).toBeLessThan(15);
    } finally {
      await agent.kill();
    }
    // The agent is gone: its last sync only gets older, scrape after scrape.
    const at = (await scrape()).value('pxecache_site_sync_lag_seconds', { site: 'default' });
    await new Promise((r) => setTimeout(r, 1100));
    const later = (await scrape()).value('pxecache_site_sync_lag_seconds', { site: 'default' });
    expect(later - at).toBeGreaterThanOrEqual(1);
  });
});
