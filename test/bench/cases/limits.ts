import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startDataServer } from '../data-server.js';
import { median, repeat, timedShell, type Row } from '../harness.js';

const MiB = 1 << 20;
const GiB = 1 << 30;
const run = promisify(execFile);

/**
 * What this machine can do at all, so the other cases' numbers can be read against it: sha256 (openssl, and Node's
 * crypto as pxecache calls it), and a loopback HTTP copy from the benchmark upstream with curl, to /dev/null and to
 * a file. From those, the floor of a cold fetch of `coldBytes` (the cold-fetch case's size).
 */
export async function limits(opts: { bytes?: number; coldBytes?: number; seconds?: number; runs?: number }) {
  const bytes = opts.bytes ?? GiB;
  const coldBytes = opts.coldBytes ?? GiB;
  const seconds = opts.seconds ?? 3;
  const runs = opts.runs ?? 3;
  const openssl = await opensslSha256(seconds);
  const nodeSha = nodeSha256(seconds);
  const data = await startDataServer();
  const dir = await mkdtemp(join(tmpdir(), 'pxecache-bench-limits-'));
  try {
    const url = data.url(bytes, 'limits');
    const toNull = await repeat(runs, 1, () => timedShell(`curl -sf -o /dev/null ${url}`));
    // Each run writes a new file (page cache, no fsync: what curl -o does), removed before the next run.
    const toFile = await repeat(
      runs,
      1,
      () => timedShell(`curl -sf -o ${dir}/copy ${url}`),
      () => rm(join(dir, 'copy'), { force: true }),
    );
    const nullMiBs = bytes / MiB / toNull.seconds;
    const fileMiBs = bytes / MiB / toFile.seconds;
    const size = bytes >= GiB ? `${(bytes / GiB).toFixed(2)} GiB` : `${(bytes / MiB).toFixed(0)} MiB`;
    const row = (name: string, value: number, note?: string): Row => ({
      name: `limits: ${name}`,
      pxecache: value,
      baseline: null,
      baselineName: '',
      unit: 'MiB/s',
      digits: 0,
      peakRssMiB: null,
      target: 'report',
      met: null,
      ...(note ? { note } : {}),
    });
    return [
      row('sha256, openssl speed -evp (16 KiB blocks)', openssl),
      row('sha256, node crypto (1 MiB updates)', nodeSha),
      row(`loopback HTTP ${size}, curl -> /dev/null`, nullMiBs),
      row(
        `loopback HTTP ${size}, curl -> file`,
        fileMiBs,
        coldFloorNote(coldBytes, { toFile: fileMiBs, nodeSha, openssl }),
      ),
    ];
  } finally {
    data.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** `openssl speed` prints "sha256  <n>k" per block size, in thousands of bytes per second. */
async function opensslSha256(seconds: number): Promise<number> {
  const secs = String(Math.max(1, Math.round(seconds)));
  const { stdout } = await run('openssl', ['speed', '-evp', 'sha256', '-bytes', '16384', '-seconds', secs]);
  const m = /^sha256\s+([\d.]+)k\s*$/m.exec(stdout);
  if (!m) throw new Error(`cannot parse openssl speed output:\n${stdout}`);
  const mibs = (Number(m[1]) * 1000) / MiB;
  console.error(`  openssl sha256: ${mibs.toFixed(0)} MiB/s`);
  return mibs;
}

/**
 * Node's one-shot-per-chunk hashing as pxecache's hasher does it (update per body chunk), on 1 MiB buffers: the
 * median of one-second samples, so that a moment of contention from other work on this machine counts once.
 */
function nodeSha256(seconds: number): number {
  const buf = randomBytes(MiB);
  const samples: number[] = [];
  const end = Date.now() + Math.max(1, seconds) * 1000;
  while (Date.now() < end) {
    const hash = createHash('sha256');
    const start = process.hrtime.bigint();
    let n = 0;
    while (Number(process.hrtime.bigint() - start) < 1e9) {
      hash.update(buf);
      n++;
    }
    hash.digest();
    samples.push(n / (Number(process.hrtime.bigint() - start) / 1e9));
  }
  const mibs = median(samples);
  console.error(`  node sha256: ${mibs.toFixed(0)} MiB/s (${samples.length} one-second samples)`);
  return mibs;
}

/**
 * A cold fetch receives, hashes and writes every byte. Perfectly pipelined (hash on one core, receive and write on
 * another) the slower of the copy to a file and the hash is the floor; copy then hash on one core is the bound
 * for a single-threaded pipeline (pxecache hashes on the thread that reads the socket; only the file writes run on
 * libuv's pool). The cold-fetch case's baseline script does copy, then hash (sha256sum, about openssl's speed), then
 * sync. The data server sends from this process, so the copy figures already pay for the sender, as in cold-fetch.
 */
function coldFloorNote(coldBytes: number, r: { toFile: number; nodeSha: number; openssl: number }): string {
  const mib = coldBytes / MiB;
  const overlapped = mib / Math.min(r.toFile, r.nodeSha);
  const serial = mib / r.toFile + mib / r.nodeSha;
  const script = mib / r.toFile + mib / r.openssl;
  const label = coldBytes >= GiB ? `${(coldBytes / GiB).toFixed(2)} GiB` : `${mib.toFixed(0)} MiB`;
  return (
    `cold-fetch floor for ${label}: ${overlapped.toFixed(2)} s perfectly pipelined (max of curl -> file and node ` +
    `sha256), ${serial.toFixed(2)} s copy then hash on one core; the curl+sha256sum+sync+mv baseline needs at ` +
    `least ${script.toFixed(2)} s + sync (curl -> file + openssl sha256)`
  );
}
