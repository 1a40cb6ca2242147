import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDataServer } from '../data-server.js';
import { pxecache, repeat, timedShell, type Row } from '../harness.js';

const GiB = 1 << 30;

/**
 * Issue "Performance", case 1: cold fetch of 1 GiB into the file store, whole processes, against what an operator
 * would script to do the same job safely (download, checksum, make durable, rename), and against plain curl.
 */
export async function coldFetch(opts: { bytes?: number; runs?: number }): Promise<Row[]> {
  const bytes = opts.bytes ?? GiB;
  const runs = opts.runs ?? 3;
  const data = await startDataServer();
  const dir = await mkdtemp(join(tmpdir(), 'pxecache-bench-cold-'));
  try {
    let n = 0;
    // A fresh store and a fresh URL each run: every fetch is cold.
    const ours = await repeat(runs, 1, () =>
      pxecache([
        'fetch',
        '--store',
        `file:${join(dir, `store-${++n}`)}`,
        '--prefix',
        'boot/b',
        '--url',
        data.url(bytes, `k${n}`),
        '--log-level',
        'warn',
      ]),
    );
    const safe = await repeat(runs, 1, () =>
      timedShell(
        `curl -sf -o ${dir}/tmp ${data.url(bytes)} && sha256sum ${dir}/tmp >/dev/null && sync ${dir}/tmp && mv ${dir}/tmp ${dir}/file`,
      ),
    );
    const plain = await repeat(runs, 1, () => timedShell(`curl -sf -o ${dir}/plain ${data.url(bytes)}`));
    const label = `cold fetch ${(bytes / GiB).toFixed(bytes >= GiB ? 0 : 2)} GiB, file store`;
    return [
      {
        name: label,
        pxecache: ours.seconds,
        baseline: safe.seconds,
        baselineName: 'curl+sha256sum+sync+mv',
        unit: 's',
        peakRssMiB: ours.peakRssMiB,
        target: '<= 1.0',
        met: ours.seconds <= safe.seconds,
      },
      {
        name: `${label} vs plain curl`,
        pxecache: ours.seconds,
        baseline: plain.seconds,
        baselineName: 'curl -o',
        unit: 's',
        peakRssMiB: ours.peakRssMiB,
        target: 'report',
        met: null,
      },
    ];
  } finally {
    data.close();
    await rm(dir, { recursive: true, force: true });
  }
}
