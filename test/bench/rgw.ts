/**
 * A throwaway Ceph RGW for the S3 benchmark cases (scripts/ceph-rgw.sh), robust to a shared machine: one retried
 * start, and daemons that outlive the script's stop are reaped by PID.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const RGW = fileURLToPath(new URL('../../../scripts/ceph-rgw.sh', import.meta.url));

/**
 * Two clusters started at the very same moment on this machine once failed ("ceph-osd exited"): one retry a minute
 * later, as for any shared-machine start-up race. The script stops what it started when it fails.
 */
export async function startRgw(rgw: string, memstoreBytes: number): Promise<Record<string, string>> {
  const start = () =>
    execFileSync('bash', [RGW, 'start', rgw], {
      stdio: 'inherit',
      env: { ...process.env, RGW_MEMSTORE_BYTES: String(memstoreBytes) },
    });
  try {
    start();
    return await rgwEnv(rgw);
  } catch (err) {
    console.error(`  Ceph RGW did not start (${(err as Error).message.split('\n')[0]}); retrying in 60 s`);
    stopRgw(rgw);
    await sleep(60_000);
    try {
      start();
    } catch (again) {
      stopRgw(rgw);
      throw again;
    }
  }
  return rgwEnv(rgw);
}

/** Stops exactly the daemons the script started in `rgw` (recorded PIDs); a failure to stop is reported, not thrown. */
export function stopRgw(rgw: string): void {
  try {
    execFileSync('bash', [RGW, 'stop', rgw], { stdio: 'inherit' });
  } catch (err) {
    console.error(`  ceph-rgw.sh stop ${rgw} failed: ${(err as Error).message.split('\n')[0]}`);
  }
  reapLeftovers(rgw);
}

/**
 * Seen here once: a start reported "ceph-osd (pid N) exited" while that OSD was still running, and the script's stop
 * then skipped it; it stayed, holding its memstore. Whatever still runs with this cluster's own config file (a
 * directory this case created) is ours: SIGTERM by PID, then SIGKILL.
 */
function reapLeftovers(rgw: string): void {
  const conf = join(rgw, 'ceph.conf');
  const uses = (pid: string) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(conf);
    } catch {
      return false; // gone
    }
  };
  const left = readdirSync('/proc').filter((d) => /^\d+$/.test(d) && uses(d));
  for (const pid of left) {
    console.error(`  Ceph daemon pid ${pid} of ${rgw} outlived ceph-rgw.sh stop: stopping it`);
    signal(pid, 'SIGTERM');
  }
  if (left.length === 0) return;
  execFileSync('sleep', ['5']);
  // Only a PID that still runs with this cluster's config: never a recycled one.
  for (const pid of left) if (uses(pid)) signal(pid, 'SIGKILL');
}

function signal(pid: string, name: NodeJS.Signals): void {
  try {
    process.kill(Number(pid), name);
  } catch {
    // exited in the meantime
  }
}

/** The AWS_* (and RGW_*) variables the script wrote for the cluster in `rgw`. */
async function rgwEnv(rgw: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const line of (await readFile(join(rgw, 'env'), 'utf8')).split('\n')) {
    const m = /^(?:export )?([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  }
  return env;
}
