/**
 * Talking to a `pxecache serve` child process as Foreman does (form-encoded `POST /tftp/fetch_boot_file`) and
 * watching it from outside: the status API for completion, /proc for its memory.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface FileStatus {
  readonly state: string;
  readonly version: string | null;
  readonly size: number | null;
  readonly error: { code: string; message: string } | null;
}

/** smart-proxy's `boot_filename(prefix, path)` for a prefix without a trailing slash. */
export function bootName(prefix: string, url: string): string {
  return `${prefix}-${new URL(url).pathname.split('/').pop() ?? ''}`;
}

/** What Foreman sends; smart-proxy's contract is an empty 200 once accepted, anything else is a failure here. */
export async function postBootFile(base: string, prefix: string, path: string): Promise<void> {
  const res = await fetch(`${base}/tftp/fetch_boot_file`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ prefix, path }).toString(),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`fetch_boot_file ${prefix} ${path}: ${res.status} ${text.slice(0, 300)}`);
}

export async function fileStatus(base: string, name: string): Promise<FileStatus | null> {
  const res = await fetch(`${base}/api/v1/files/${name}`);
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (res.status !== 200) throw new Error(`status of ${name}: ${res.status} ${(await res.text()).slice(0, 300)}`);
  return (await res.json()) as FileStatus;
}

/**
 * Polls the status until `ready` (a `failed` status throws). A short interval: the poll's own delay is part of the
 * measured wall time, so it must stay small next to a transfer of seconds; a status read is a few small store reads.
 */
export async function waitReady(
  base: string,
  name: string,
  opts: { pollMs?: number; timeoutMs?: number } = {},
): Promise<FileStatus> {
  const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
  for (;;) {
    const status = await fileStatus(base, name);
    if (status?.state === 'ready' && status.version !== null) return status;
    if (status?.state === 'failed') throw new Error(`${name} failed: ${JSON.stringify(status.error)}`);
    if (Date.now() > deadline) throw new Error(`${name} not ready in time: ${JSON.stringify(status)}`);
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 10));
  }
}

function statusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Peak RSS of a running process so far (Linux VmHWM), MiB; null where /proc does not tell. */
export function peakRssMiB(pid: number): number | null {
  const kib = statusKiB(pid, 'VmHWM');
  return kib === null ? null : kib / 1024;
}

export function rssMiB(pid: number): number | null {
  const kib = statusKiB(pid, 'VmRSS');
  return kib === null ? null : kib / 1024;
}

/**
 * Restarts the peak at the current RSS (`echo 5 > /proc/<pid>/clear_refs`), so that one long-lived server can report
 * the peak of each phase separately. False where that is not allowed: the peak then covers the whole process life.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** CPU time (user + system, every thread) a process has used so far, seconds; null where /proc does not tell. */
export function cpuSeconds(pid: number): number | null {
  try {
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of those, in clock ticks
    // (100 per second on Linux).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}
