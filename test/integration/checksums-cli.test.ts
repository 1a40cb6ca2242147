/**
 * `pxecache fetch` (the built bin, as installed) verifies against the medium's `.treeinfo` like the server does: a
 * mirror caught mid-sync is exit 1 with `integrity` and nothing published; the next run after the sync publishes.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileStatus } from '../../src/core/records.js';
import { bytesOf, sha256 } from '../helpers/api.js';
import { RHEL_KERNEL, TREEINFO, serveRhel, treeinfo } from '../helpers/checksum-media.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';

const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

function fetchCli(store: string, url: string): Promise<{ code: number; status: FileStatus | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, 'fetch', '--store', `file:${store}`, '--prefix', 'boot/rhel', '--url', url],
      { env: { PATH: process.env.PATH ?? '' }, timeout: 20_000 },
      (err, stdout, stderr) =>
        resolve({
          code: err ? ((err as { code?: number }).code ?? 1) : 0,
          status: stdout.trim() ? (JSON.parse(stdout) as FileStatus) : null,
          stderr,
        }),
    );
  });
}

describe('pxecache fetch with upstream checksums', () => {
  let dir: string;
  let up: Upstream;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pxecache-cli-sums-'));
    up = await createUpstream();
  });
  afterAll(async () => {
    await up.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('ready with verifiedBy; mid-sync exit 1 (`integrity`, same version); published after the sync', async () => {
    const store = join(dir, 'store');
    const [k1, k2, initrd] = [bytesOf('k1', 5000), bytesOf('k2', 5000), bytesOf('i1', 7000)];
    serveRhel(up, k1, initrd);
    const first = await fetchCli(store, up.url(RHEL_KERNEL));
    expect(first.code).toBe(0);
    expect(first.status).toMatchObject({ state: 'ready', generation: 1, sha256: sha256(k1) });
    expect(first.status?.verifiedBy).toEqual({ kind: 'treeinfo', url: up.url(TREEINFO), algorithm: 'sha256' });

    up.set(RHEL_KERNEL, k2);
    const refused = await fetchCli(store, up.url(RHEL_KERNEL));
    expect(refused.code).toBe(1);
    expect(refused.status).toMatchObject({ state: 'failed', generation: 1, sha256: sha256(k1) });
    expect(refused.status?.error).toMatchObject({ code: 'integrity' });

    up.set(TREEINFO, treeinfo({ 'images/pxeboot/vmlinuz': k2 }));
    const published = await fetchCli(store, up.url(RHEL_KERNEL));
    expect(published.code).toBe(0);
    expect(published.status).toMatchObject({ state: 'ready', generation: 2, sha256: sha256(k2) });
    // Each run is a new process: the cached .treeinfo in the store made its checks conditional.
    const asked = up.requests.filter((r) => r.path === TREEINFO);
    expect(asked.map((r) => r.status)).toEqual([200, 304, 200]);
    expect(asked.slice(1).every((r) => r.headers['if-none-match'] !== undefined)).toBe(true);
  });
});
