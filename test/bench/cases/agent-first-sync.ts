import { readdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServeProcess } from '../../helpers/serve-process.js';
import { pxecache, repeat, timedShell, type Row } from '../harness.js';
import { AWS, publishAll, startRgw, startVariedUpstream, stopRgw } from './agent-common.js';

const MiB = 1 << 20;
const GiB = 1 << 30;

/**
 * An edge's first sync from S3 (Ceph RGW started here): `files` names of `bytes` each published in the bucket, then
 * `pxecache agent --source s3://... --once` into a fresh TFTP root, against `aws s3 sync` of the same version bytes
 * (`<prefix>/data/`, core/object-keys.ts) from the same server. The agent does more per file than the baseline (it
 * reads the catalog, verifies every sha256, fsyncs each file and directory, renames, swaps a link), which is the
 * point of the comparison: that safety should cost no wall time against a plain copy.
 */
export async function agentFirstSync(opts: { files?: number; bytes?: number; runs?: number }): Promise<Row[]> {
  const files = opts.files ?? 1000;
  const bytes = opts.bytes ?? MiB;
  const runs = opts.runs ?? 3;
  const dir = await mkdtemp(join(tmpdir(), 'pxecache-bench-agent-sync-'));
  // memstore keeps objects in RAM: the versions once, plus RGW's own use.
  const rgw = join(dir, 'rgw');
  const upstream = await startVariedUpstream();
  try {
    const rgwEnv = await startRgw(rgw, Math.max(4 * GiB, files * bytes * 2 + 2 * GiB));
    const env: NodeJS.ProcessEnv = { ...process.env, ...rgwEnv };
    const aws = `${AWS} --endpoint-url ${rgwEnv.AWS_ENDPOINT_URL_S3} --region ${rgwEnv.AWS_REGION ?? 'us-east-1'}`;
    await timedShell(`${aws} s3 mb s3://bench`, env);
    await populate(rgwEnv, files, bytes, upstream.url);

    // Each run starts from an empty directory, with the previous run's output removed and the page cache's dirty
    // pages written (untimed): no run pays for the writeback of the one before.
    const clean = async () => {
      await rmOutputs(dir);
      await timedShell('sync');
    };
    let n = 0;
    const agent = () =>
      pxecache(['agent', '--source', 's3://bench/edge', '--tftp-root', join(dir, `root-${++n}`), '--once'], {
        ...env,
        PXECACHE_LOG_LEVEL: 'warn',
      });
    const ours = await repeat(runs, 1, agent, clean);
    let m = 0;
    const awsSync = async (then: string) => {
      const out = join(dir, `sync-${++m}`);
      const t = await timedShell(`${aws} s3 sync --only-show-errors s3://bench/edge/data/ ${out}${then}`, env);
      // The baseline must have copied every version too, or the ratio compares different work.
      const got = (await readdir(out)).length;
      if (got !== files) throw new Error(`aws s3 sync copied ${got} objects, expected ${files}`);
      return t;
    };
    const base = await repeat(runs, 1, () => awsSync(''), clean);
    // The agent fsyncs every version file and directory before it links it; aws s3 sync leaves its writes in the page
    // cache. For the record, the same copy made durable (`sync` writes back every dirty page of the machine).
    const durable = await repeat(runs, 0, () => awsSync(' && sync'), clean);
    const label = `agent first sync ${files} x ${fmtBytes(bytes)} from S3 (Ceph RGW)`;
    const row = (name: string, baseline: number, baselineName: string, target: string, met: boolean | null): Row => ({
      name,
      pxecache: ours.seconds,
      baseline,
      baselineName,
      unit: 's',
      peakRssMiB: ours.peakRssMiB,
      target,
      met,
    });
    return [
      row(label, base.seconds, 'aws s3 sync', '<= 1.0', ours.seconds <= base.seconds),
      row(`${label} vs a durable copy`, durable.seconds, 'aws s3 sync && sync', 'report', null),
    ];
  } finally {
    upstream.close();
    stopRgw(rgw);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Publishes the names through one `pxecache serve` on the bucket (the real fetch path, many in flight). */
async function populate(
  rgwEnv: Record<string, string>,
  files: number,
  bytes: number,
  url: (bytes: number, name: string) => string,
): Promise<void> {
  const serve = await startServeProcess('s3://bench/edge', [], rgwEnv);
  try {
    const items = Array.from({ length: files }, (_, i) => {
      const base = `f${String(i).padStart(5, '0')}`;
      return { name: `boot/bench-${base}-vmlinuz`, url: url(bytes, base) };
    });
    await publishAll(serve.url, items, 16);
  } finally {
    await serve.stop();
  }
}

async function rmOutputs(dir: string): Promise<void> {
  for (const e of await readdir(dir)) {
    if (/^(root|sync)-\d+(\.state)?$/.test(e)) await rm(join(dir, e), { recursive: true, force: true });
  }
}

function fmtBytes(n: number): string {
  return n >= MiB ? `${+(n / MiB).toFixed(2)} MiB` : `${+(n / 1024).toFixed(1)} KiB`;
}
