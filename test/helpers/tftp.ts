/**
 * tftpd-hpa and the tftp-hpa client for end-to-end tests: the real server PXE clients talk to, chrooted into a test
 * root (`-s`, which is why the edge layout uses relative links), and a client that reports failure reliably.
 *
 * tftp-hpa exits 0 even when a transfer fails ("Error code 1: File not found" on stdout, empty local file), so a read
 * counts only when the client printed "Received <n> bytes" in verbose mode and the local file has exactly n bytes.
 * Commands go through stdin rather than `-c` because only the interactive form can set `timeout`/`rexmt`: with `-c`
 * a dead server costs 25 s per attempt.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TFTPD = '/usr/sbin/in.tftpd';
export const TFTP = 'tftp';

/** Seconds the client retransmits before giving up; the node-side kill comes later, as a backstop. */
const CLIENT_TIMEOUT_S = 10;
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;
const PORT_ATTEMPTS = 5;

export interface Tftpd {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export type TftpResult =
  { readonly ok: true; readonly bytes: Buffer } | { readonly ok: false; readonly reason: string };

/**
 * Fails with an actionable message when tftpd-hpa or tftp-hpa is missing: CI installs both (`.ci/run`), so an e2e
 * suite that skipped instead would pass without testing anything.
 */
export function assertTftpTools(): void {
  const problems: string[] = [];
  if (!existsSync(TFTPD)) problems.push(`${TFTPD} not found (Debian/Ubuntu: apt-get install tftpd-hpa)`);
  const client = spawnSync(TFTP, ['-V'], { encoding: 'utf8', timeout: 5_000 });
  if (client.error || !/tftp-hpa/.test(`${client.stdout}${client.stderr}`)) {
    problems.push(
      `"${TFTP} -V" does not report tftp-hpa (apt-get install tftp-hpa): ${client.error?.message ?? client.stdout}`,
    );
  }
  if (process.getuid?.() !== 0) problems.push('in.tftpd -s (chroot) -u root needs root; run the e2e suite as root');
  if (problems.length) throw new Error(`TFTP e2e prerequisites missing:\n  ${problems.join('\n  ')}`);
}

/** A UDP port that was free a moment ago; startTftpd retries on another one if tftpd loses the race for it. */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => socket.once('error', reject).bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

/** `in.tftpd -L -s <root>` (foreground, chrooted) on 127.0.0.1, resolved once it answers a request. */
export async function startTftpd(root: string): Promise<Tftpd> {
  assertTftpTools();
  const failures: string[] = [];
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await freeUdpPort();
    const started = await tryStart(root, port);
    if ('tftpd' in started) return started.tftpd;
    failures.push(`port ${port}: ${started.failure}`);
  }
  throw new Error(`in.tftpd did not start on ${root} after ${PORT_ATTEMPTS} attempts:\n  ${failures.join('\n  ')}`);
}

async function tryStart(root: string, port: number): Promise<{ tftpd: Tftpd } | { failure: string }> {
  // Own process group: tftpd forks one child per transfer, and stop() must end those too.
  const child = spawn(TFTPD, ['-L', '-s', root, '--address', `127.0.0.1:${port}`, '-u', 'root'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<string>((resolve) => {
    child.once('error', (err) => resolve(`spawn failed: ${err.message}`));
    // tftpd-hpa reports to syslog only: exit 71 is a bind failure (port taken), 66 a missing root.
    child.once('exit', (code, signal) => resolve(`exited with ${code ?? signal} ${output.trim()}`.trim()));
  });
  let exit: string | null = null;
  void exited.then((why) => (exit = why));

  const stop = async () => {
    if (exit !== null || child.pid === undefined) return;
    const group = -child.pid;
    signalGroup(group, 'SIGTERM');
    const escalate = setTimeout(() => signalGroup(group, 'SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(escalate);
    signalGroup(group, 'SIGKILL'); // transfer children still running after the listener went
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    if (exit !== null) return { failure: exit };
    // A missing file answers "Error code 1" at once from a live server; nothing answers while it is not bound yet.
    const probe = await tftpFetch(port, 'pxecache-e2e-probe-does-not-exist', { timeoutS: 1 });
    if (!probe.ok && /Error code 1/.test(probe.reason)) {
      return { tftpd: { port, pid: child.pid as number, stop } };
    }
    last = probe.ok ? 'the probe file unexpectedly exists' : probe.reason;
    if (exit === null) await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  return { failure: `no answer within ${READY_TIMEOUT_MS} ms (last probe: ${last})` };
}

function signalGroup(group: number, signal: NodeJS.Signals): void {
  try {
    process.kill(group, signal);
  } catch {
    // ESRCH: the group is already gone
  }
}

/** One TFTP read (octet mode) with the reason when it fails. */
export async function tftpFetch(port: number, remote: string, opts: { timeoutS?: number } = {}): Promise<TftpResult> {
  const timeoutS = opts.timeoutS ?? CLIENT_TIMEOUT_S;
  const dir = await mkdtemp(join(tmpdir(), 'pxecache-tftp-get-'));
  const local = join(dir, 'out');
  try {
    const script = `binary\nverbose\ntimeout ${timeoutS}\nrexmt 1\nget ${remote} ${local}\nquit\n`;
    // -l (literal): a ':' in a name is part of the name, not a host separator.
    const run = await runClient(['-4', '-l', '127.0.0.1', String(port)], script, (timeoutS + 10) * 1000);
    const output = run.output.replace(/tftp> /g, '').trim();
    if (run.failure) return { ok: false, reason: `${run.failure}: ${output}` };
    const received = /Received (\d+) bytes/.exec(output);
    if (!received || /Error code|timed out/i.test(output)) return { ok: false, reason: output || 'no output' };
    const bytes = await readFile(local);
    if (bytes.byteLength !== Number(received[1])) {
      return { ok: false, reason: `client reported ${received[1]} bytes, local file has ${bytes.byteLength}` };
    }
    return { ok: true, bytes };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The bytes of `remote`, or null when the read failed for any reason (use tftpFetch to learn why). */
export async function tftpGet(port: number, remote: string): Promise<Buffer | null> {
  const r = await tftpFetch(port, remote);
  return r.ok ? r.bytes : null;
}

function runClient(args: string[], stdin: string, killMs: number): Promise<{ output: string; failure: string | null }> {
  return new Promise((resolve) => {
    const child = spawn(TFTP, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let failure: string | null = null;
    const timer = setTimeout(() => {
      failure = `tftp client killed after ${killMs} ms`;
      child.kill('SIGKILL');
    }, killMs);
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.stdin.on('error', () => undefined); // EPIPE if the client died early; the exit below reports it
    // 'close' may not follow a spawn error (ENOENT): settle here too; a second resolve is a no-op.
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ output, failure: failure ?? `spawn ${TFTP} failed: ${err.message}` });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (failure === null && code !== 0) failure = `tftp exited with ${code ?? signal}`;
      resolve({ output, failure });
    });
    child.stdin.end(stdin);
  });
}
