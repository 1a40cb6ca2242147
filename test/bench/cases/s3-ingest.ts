import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDataServer } from '../data-server.js';
import { pxecache, repeat, timedShell, type Row } from '../harness.js';

const GiB = 1 << 30;
const RGW = fileURLToPath(new URL('../../../../scripts/ceph-rgw.sh', import.meta.url));

/**
 * Issue "S3 object storage" benchmark: a 2 GiB upstream stream ingested into S3 (Ceph RGW started here) by
 * `pxecache fetch --store s3://...`, against `curl | aws s3 cp - s3://...` (Debian's awscli) on the same server.
 */
export async function s3Ingest(opts: { bytes?: number; runs?: number }): Promise<Row[]> {
  const bytes = opts.bytes ?? 2 * GiB;
  const runs = opts.runs ?? 2;
  const dir = await mkdtemp(join(tmpdir(), 'pxecache-bench-s3-'));
  // memstore keeps objects in RAM and frees deleted ones only after RGW's GC delay: room for every run of both
  // clients (no warm-up run here: a 2 GiB upload warms everything up by itself) plus RGW's own use.
  const memstore = String(Math.max(4 * GiB, bytes * 2 * runs + 2 * GiB));
  execFileSync('bash', [RGW, 'start', join(dir, 'rgw')], {
    stdio: 'inherit',
    env: { ...process.env, RGW_MEMSTORE_BYTES: memstore },
  });
  const data = await startDataServer();
  try {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const line of (await readFile(join(dir, 'rgw', 'env'), 'utf8')).split('\n')) {
      const m = /^(?:export )?([A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (m) env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
    }
    const endpoint = env.AWS_ENDPOINT_URL_S3 ?? '';
    // Debian's awscli (v2) is the baseline client; a pip-installed v1 earlier on PATH would be another program.
    const aws = `${existsSync('/usr/bin/aws') ? '/usr/bin/aws' : 'aws'} --endpoint-url ${endpoint} --region ${env.AWS_REGION ?? 'us-east-1'}`;
    await timedShell(`${aws} s3 mb s3://bench`, env);
    let n = 0;
    const ours = await repeat(runs, 0, () =>
      pxecache(
        [
          'fetch',
          '--store',
          `s3://bench/p${++n}`,
          '--prefix',
          'boot/b',
          '--url',
          data.url(bytes, `k${n}`),
          '--log-level',
          'warn',
        ],
        env,
      ),
    );
    let m = 0;
    const base = await repeat(runs, 0, () =>
      timedShell(`curl -sf ${data.url(bytes)} | ${aws} s3 cp - s3://bench/cp-${++m}`, env),
    );
    return [
      {
        name: `S3 multipart ingest ${(bytes / GiB).toFixed(bytes >= GiB ? 0 : 2)} GiB (Ceph RGW)`,
        pxecache: ours.seconds,
        baseline: base.seconds,
        baselineName: 'curl | aws s3 cp -',
        unit: 's',
        peakRssMiB: ours.peakRssMiB,
        target: '<= 1.0; RSS <= 128 MiB',
        met: ours.seconds <= base.seconds && (ours.peakRssMiB ?? Infinity) <= 128,
      },
    ];
  } finally {
    data.close();
    execFileSync('bash', [RGW, 'stop', join(dir, 'rgw')], { stdio: 'inherit' });
    await rm(dir, { recursive: true, force: true });
  }
}
