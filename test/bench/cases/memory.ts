import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { startDataServer } from '../data-server.js';
import { startRgw, stopRgw } from '../rgw.js';
import { pxecache, repeat, type Row } from '../harness.js';

const MiB = 1 << 20;
const GiB = 1 << 30;
const RSS_LIMIT_MiB = 128;

/**
 * README "Memory": the peak RSS of a one-shot `pxecache fetch` (the bin, with its node flags) must stay under
 * 128 MiB and not grow with the file: a small and a large file on each store, the large one's peak divided by the
 * small one's (a same-run ratio: the Node baseline itself moves between machines and versions).
 */
export async function memory(opts: { small?: number; large?: number }): Promise<Row[]> {
  const sizes = [opts.small ?? 256 * MiB, opts.large ?? 4 * GiB];
  const dir = await mkdtemp(join(tmpdir(), 'pxecache-bench-memory-'));
  const data = await startDataServer();
  let n = 0;
  const fetchOnce = (store: string, bytes: number, env: NodeJS.ProcessEnv = process.env) =>
    // One run each, no warm-up: a peak is a maximum (not a median) and barely moves between runs, and a 4 GiB
    // transfer warms everything up by itself.
    repeat(1, 0, () =>
      pxecache(
        ['fetch', '--store', store, '--prefix', 'boot/m', '--url', data.url(bytes, `m${++n}`), '--log-level', 'warn'],
        env,
      ),
    );
  try {
    const rows: Row[] = [];
    const file: number[] = [];
    for (const bytes of sizes) file.push(mustRss(await fetchOnce(`file:${join(dir, `store-${bytes}`)}`, bytes)));
    rows.push(...rowsFor('file store', sizes, file));
    rows.push(...(await onS3(dir, sizes, fetchOnce)));
    return rows;
  } finally {
    data.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The same fetches into a throwaway Ceph RGW whose memstore holds every object at once, plus RGW's own use. */
async function onS3(
  dir: string,
  sizes: readonly number[],
  fetchOnce: (store: string, bytes: number, env: NodeJS.ProcessEnv) => Promise<{ peakRssMiB: number | null }>,
): Promise<Row[]> {
  const rgw = join(dir, 'rgw');
  const memstore = sizes.reduce((a, b) => a + b, 0) + 2 * GiB;
  const env: NodeJS.ProcessEnv = { ...process.env, ...(await startRgw(rgw, memstore)) };
  try {
    await createBucket(env, 'bench');
    const rss: number[] = [];
    for (const bytes of sizes) rss.push(mustRss(await fetchOnce(`s3://bench/m-${bytes}`, bytes, env)));
    return rowsFor('S3 (Ceph RGW)', sizes, rss);
  } finally {
    stopRgw(rgw);
  }
}

async function createBucket(env: NodeJS.ProcessEnv, bucket: string): Promise<void> {
  const client = new S3Client({
    endpoint: env.AWS_ENDPOINT_URL_S3 ?? '',
    region: env.AWS_REGION ?? 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID ?? '', secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? '' },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}

function mustRss(m: { peakRssMiB: number | null }): number {
  if (m.peakRssMiB === null) throw new Error('pxecache fetch reported no peak RSS (rss-report.mjs preload missing?)');
  return m.peakRssMiB;
}

function sizeLabel(bytes: number): string {
  return bytes >= GiB ? `${(bytes / GiB).toFixed(2).replace(/\.?0+$/, '')} GiB` : `${(bytes / MiB).toFixed(0)} MiB`;
}

/** The small file's peak against the limit; the large file's against the limit and against the small one's. */
function rowsFor(store: string, sizes: readonly number[], rss: readonly number[]): Row[] {
  const [small, large] = [rss[0] ?? NaN, rss[1] ?? NaN];
  return [
    {
      name: `memory: fetch ${sizeLabel(sizes[0] ?? 0)}, ${store}`,
      pxecache: small,
      baseline: null,
      baselineName: '',
      unit: 'MiB',
      digits: 0,
      peakRssMiB: small,
      target: `RSS <= ${RSS_LIMIT_MiB} MiB`,
      met: small <= RSS_LIMIT_MiB,
    },
    {
      name: `memory: fetch ${sizeLabel(sizes[1] ?? 0)}, ${store}`,
      pxecache: large,
      baseline: small,
      baselineName: `fetch ${sizeLabel(sizes[0] ?? 0)}`,
      unit: 'MiB',
      digits: 0,
      peakRssMiB: large,
      target: `<= 1.1; RSS <= ${RSS_LIMIT_MiB} MiB`,
      met: large <= RSS_LIMIT_MiB && large <= 1.1 * small,
    },
  ];
}
