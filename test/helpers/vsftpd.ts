/**
 * A real FTP server for integration tests: Debian's vsftpd, one instance per test file on free ports of 127.0.0.1,
 * serving a temp dir to anonymous users, read-only, passive mode only. Its log records every FTP command and every
 * transfer, so tests can count RETRs instead of guessing whether a download happened.
 *
 * vsftpd refuses an anonymous root writable by the ftp user and needs an empty, root-owned `secure_chroot_dir`: both
 * are made 0755 here. As root it chroots and drops to the `ftp` user (so served files must be world-readable);
 * otherwise it runs as the launching user (`run_as_launching_user`), which is fine for a loopback test server.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const VSFTPD = '/usr/sbin/vsftpd';

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;
const PORT_ATTEMPTS = 5;
const PASV_PORTS = 40;

export interface Vsftpd {
  readonly port: number;
  /** The anonymous root: `put` writes here. */
  readonly root: string;
  /** `ftp://127.0.0.1:<port>/<path>` */
  url(path: string): string;
  /** Writes a served file (world-readable, parent dirs 0755), with an explicit mtime when given. */
  put(path: string, bytes: Uint8Array, mtime?: Date): Promise<void>;
  /** The FTP commands received so far with this verb (`RETR`, `SIZE`, `MDTM`, `REST`), arguments as sent. */
  commands(verb: string): Promise<string[]>;
  /** Completed downloads so far ("OK DOWNLOAD" log lines) of this absolute path, e.g. `/images/pxeboot/vmlinuz`. */
  downloads(path: string): Promise<number>;
  /** The whole vsftpd log (for failure messages). */
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** Fails with an actionable message when vsftpd is missing: a suite that skipped instead would test nothing. */
export function assertVsftpd(): void {
  if (!existsSync(VSFTPD))
    throw new Error(
      `FTP integration tests need vsftpd: ${VSFTPD} not found (Debian/Ubuntu: apt-get install vsftpd, or bash scripts/setup.sh)`,
    );
}

export async function startVsftpd(): Promise<Vsftpd> {
  assertVsftpd();
  const dir = await mkdtemp(join(tmpdir(), 'pxecache-vsftpd-'));
  const root = join(dir, 'root');
  const empty = join(dir, 'empty');
  await mkdir(root);
  await mkdir(empty);
  for (const d of [dir, root, empty]) await chmod(d, 0o755);
  const failures: string[] = [];
  try {
    for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
      const port = await freeTcpPort();
      const pasv = await freePortRange(PASV_PORTS);
      const started = await tryStart(dir, root, empty, port, pasv);
      if ('stop' in started) return started;
      failures.push(`port ${port}: ${started.failure}`);
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`vsftpd did not start after ${PORT_ATTEMPTS} attempts:\n  ${failures.join('\n  ')}`);
}

async function tryStart(
  dir: string,
  root: string,
  empty: string,
  port: number,
  pasv: number,
): Promise<Vsftpd | { failure: string }> {
  const logFile = join(dir, `vsftpd-${port}.log`);
  const conf = join(dir, `vsftpd-${port}.conf`);
  const lines = [
    'listen=YES',
    'listen_ipv6=NO',
    'listen_address=127.0.0.1',
    `listen_port=${port}`,
    'background=NO',
    'anonymous_enable=YES',
    'local_enable=NO',
    `anon_root=${root}`,
    'no_anon_password=YES',
    'write_enable=NO',
    'pasv_enable=YES',
    `pasv_min_port=${pasv}`,
    `pasv_max_port=${pasv + PASV_PORTS - 1}`,
    'pasv_address=127.0.0.1',
    'port_enable=NO',
    'seccomp_sandbox=NO',
    `secure_chroot_dir=${empty}`,
    // MDTM in UTC (the default, stated because Debian's own config turns use_localtime on).
    'use_localtime=NO',
    // vsftpd-format log with every command and reply: the tests count RETRs and completed downloads.
    'xferlog_enable=YES',
    'xferlog_std_format=NO',
    'log_ftp_protocol=YES',
    `vsftpd_log_file=${logFile}`,
  ];
  if (process.getuid?.() !== 0) lines.push('run_as_launching_user=YES');
  await writeFile(conf, lines.join('\n') + '\n');

  // Own process group: vsftpd forks a process per session, and stop() must end those too.
  const child = spawn(VSFTPD, [conf], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<string>((resolve) => {
    child.once('error', (err) => resolve(`spawn failed: ${err.message}`));
    // "500 OOPS: could not bind listening IPv4 socket" when the port was taken meanwhile.
    child.once('exit', (code, signal) => resolve(`exited with ${code ?? signal} ${output.trim()}`.trim()));
  });
  let exit: string | null = null;
  void exited.then((why) => (exit = why));

  const stop = async () => {
    if (child.pid === undefined) return;
    const group = -child.pid;
    if (exit === null) {
      signalGroup(group, 'SIGTERM');
      const escalate = setTimeout(() => signalGroup(group, 'SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(escalate);
    }
    signalGroup(group, 'SIGKILL'); // session processes still running after the listener went
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    if (exit !== null) return { failure: exit };
    last = await greeting(port);
    if (last.startsWith('220')) {
      const log = async () => readFile(logFile, 'utf8').catch(() => '');
      return {
        port,
        root,
        url: (path) => `ftp://127.0.0.1:${port}/${path.replace(/^\//, '')}`,
        async put(path, bytes, mtime) {
          const file = join(root, path);
          await mkdirReadable(root, dirname(file));
          await writeFile(file, bytes);
          await chmod(file, 0o644);
          if (mtime) await utimes(file, mtime, mtime);
        },
        async commands(verb) {
          const re = new RegExp(`FTP command: Client "[^"]*", "(${verb}(?: [^"]*)?)"$`, 'gm');
          return [...(await log()).matchAll(re)].map((m) => m[1] ?? '');
        },
        async downloads(path) {
          // Without root there is no chroot and vsftpd logs the full path: match its end.
          const done = (l: string) => l.includes('OK DOWNLOAD: ') && l.includes(`${path}", `);
          return (await log()).split('\n').filter(done).length;
        },
        log,
        stop,
      };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  return { failure: `no "220" greeting within ${READY_TIMEOUT_MS} ms (last: ${last || 'nothing'})` };
}

async function mkdirReadable(root: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let d = dir; d.length > root.length; d = dirname(d)) await chmod(d, 0o755);
}

/** The first line the server sends, or the connection error. */
function greeting(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    const done = (result: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(`no greeting yet: ${text}`), 1_000);
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('\n')) done(text.trim());
    });
    socket.on('error', (err) => done(err.message));
  });
}

/** A TCP port of 127.0.0.1 that was free a moment ago; startVsftpd retries on another one if it loses the race. */
function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The first port of `count` consecutive free ports (passive data connections), outside the ephemeral range. */
async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await Promise.all(Array.from({ length: count }, (_, i) => portIsFree(base + i)));
    if (free.every(Boolean)) return base;
  }
  throw new Error(`no ${count} consecutive free TCP ports found for vsftpd's passive range`);
}

function signalGroup(group: number, signal: NodeJS.Signals): void {
  try {
    process.kill(group, signal);
  } catch {
    // ESRCH: the group is already gone
  }
}
