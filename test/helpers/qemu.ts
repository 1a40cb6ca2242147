/**
 * A real PXE client for end-to-end tests: QEMU's SeaBIOS + iPXE (e1000 option ROM) network-boots from QEMU's
 * user-mode TFTP server, pointed at a TFTP root that pxecache's agent maintains, into PXELINUX, a Debian kernel and
 * a tiny busybox initramfs that prints a marker line on the serial console and powers off.
 *
 * The initramfs is written here as a cpio "newc" archive rather than with cpio(1): that way it holds /dev/console (a
 * character device, which mknod could only create as root) and has fixed inode numbers and mtimes, so the same marker
 * always gives the same bytes (the same sha256, hence the same pxecache version).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export const QEMU = 'qemu-system-x86_64';
export const BUSYBOX = '/bin/busybox';
/** Debian's pxelinux and syslinux-common: the boot loader and the module it loads first, as an operator copies them. */
export const PXELINUX = '/usr/lib/PXELINUX/pxelinux.0';
export const LDLINUX = '/usr/lib/syslinux/modules/bios/ldlinux.c32';
/** QEMU's default MAC for the first NIC; PXELINUX asks for `pxelinux.cfg/01-<mac with dashes>` first. */
export const QEMU_MAC = '52:54:00:12:34:56';
export const MARKER = 'PXECACHE-BOOT-MARKER';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const PXE_ASSETS_DIR = resolve(REPO, '.pxecache/pxe-assets');
const PXE_ASSETS_SCRIPT = resolve(REPO, 'scripts/pxe-assets.sh');
const STOP_GRACE_MS = 3_000;

/**
 * Fails with an actionable message when a tool is missing: CI installs them (scripts/setup.sh), so a test that
 * skipped instead would pass without booting anything.
 */
export function assertQemuTools(): void {
  const problems: string[] = [];
  const qemu = spawnSync(QEMU, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (qemu.error || qemu.status !== 0) problems.push(`${QEMU} not runnable (apt-get install qemu-system-x86)`);
  if (!existsSync('/usr/lib/ipxe/qemu/efi-e1000.rom')) problems.push('the e1000 PXE ROM is missing (ipxe-qemu)');
  if (!existsSync(PXELINUX)) problems.push(`${PXELINUX} not found (apt-get install pxelinux)`);
  if (!existsSync(LDLINUX)) problems.push(`${LDLINUX} not found (apt-get install syslinux-common)`);
  if (!existsSync(BUSYBOX)) problems.push(`${BUSYBOX} not found (apt-get install busybox-static)`);
  if (problems.length) throw new Error(`PXE boot e2e prerequisites missing:\n  ${problems.join('\n  ')}`);
}

/**
 * The kernel (Debian's cloud kernel, via scripts/pxe-assets.sh: setup.sh prepares it; a cached copy makes this
 * instant and offline).
 */
export async function pxeKernel(): Promise<Buffer> {
  const run = spawnSync('bash', [PXE_ASSETS_SCRIPT, PXE_ASSETS_DIR], { encoding: 'utf8', timeout: 600_000 });
  if (run.error || run.status !== 0)
    throw new Error(`scripts/pxe-assets.sh failed (${run.error?.message ?? run.status}):\n${run.stderr}`);
  return readFile(resolve(PXE_ASSETS_DIR, 'vmlinuz'));
}

/** An ELF with a PT_INTERP program header needs a dynamic loader the initramfs does not have. */
function isStaticElf(bin: Buffer): boolean {
  if (bin.readUInt32BE(0) !== 0x7f454c46 || bin[4] !== 2 || bin[5] !== 1) return false; // ELF64, little-endian
  const phoff = Number(bin.readBigUInt64LE(0x20));
  const phentsize = bin.readUInt16LE(0x36);
  const phnum = bin.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (bin.readUInt32LE(phoff + i * phentsize) === 3) return false;
  return true;
}

interface CpioEntry {
  readonly name: string;
  readonly mode: number;
  readonly data?: Buffer;
  readonly rdev?: readonly [number, number];
}

function newc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  const push = (b: Buffer) => {
    parts.push(b);
    size += b.byteLength;
    const pad = (4 - (size % 4)) % 4;
    if (pad) {
      parts.push(Buffer.alloc(pad));
      size += pad;
    }
  };
  const all = [...entries, { name: 'TRAILER!!!', mode: 0 }];
  all.forEach((e, i) => {
    const data = e.data ?? Buffer.alloc(0);
    const isDir = (e.mode & 0o170000) === 0o040000;
    // ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
    const fields = [i + 1, e.mode, 0, 0, isDir ? 2 : 1, 0, data.byteLength, 0, 0, ...(e.rdev ?? [0, 0])];
    const name = Buffer.from(`${e.name}\0`);
    const header = `070701${[...fields, name.byteLength, 0].map((n) => n.toString(16).padStart(8, '0')).join('')}`;
    push(Buffer.concat([Buffer.from(header, 'ascii'), name]));
    if (data.byteLength) push(data);
  });
  return Buffer.concat(parts);
}

/**
 * A gzip'd initramfs whose /init prints `PXECACHE-BOOT-MARKER <tag>` on the console and powers off at once. It
 * lowers the console log level first so that no late kernel message can land inside the marker line.
 */
export async function buildInitramfs(tag: string): Promise<Buffer> {
  const busybox = await readFile(BUSYBOX);
  if (!isStaticElf(busybox)) throw new Error(`${BUSYBOX} is not a static x86-64 binary: install busybox-static`);
  const init = [
    '#!/bin/sh',
    '/bin/busybox dmesg -n 1',
    `/bin/busybox echo '${MARKER} ${tag}'`,
    '/bin/busybox poweroff -f',
    '',
  ].join('\n');
  const cpio = newc([
    { name: 'dev', mode: 0o040755 },
    { name: 'dev/console', mode: 0o020600, rdev: [5, 1] },
    { name: 'bin', mode: 0o040755 },
    { name: 'bin/busybox', mode: 0o100755, data: busybox },
    { name: 'bin/sh', mode: 0o120777, data: Buffer.from('busybox') },
    { name: 'init', mode: 0o100755, data: Buffer.from(init) },
  ]);
  // gzip's header carries no mtime from Node (0), so the bytes depend only on the content.
  return gzipSync(cpio, { level: 6 });
}

/** A PXELINUX config booting `kernel` with `initrd` (TFTP paths relative to the root) on the serial console. */
export function pxelinuxConfig(kernel: string, initrd: string): string {
  return [
    'SERIAL 0 115200',
    'DEFAULT pxecache',
    'PROMPT 0',
    'LABEL pxecache',
    `  KERNEL ${kernel}`,
    `  APPEND initrd=${initrd} console=ttyS0 panic=-1`,
    '',
  ].join('\n');
}

export interface BootResult {
  /** The serial console, whole. */
  readonly log: string;
  /** Every marker tag printed, in order (`v1`). */
  readonly markers: string[];
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** The last lines of a serial log, for failure messages. */
export function tail(log: string, lines = 25): string {
  return log.replace(/\r/g, '').split('\n').slice(-lines).join('\n');
}

/**
 * Network-boots a VM from `root` and waits for QEMU to exit (the guest powers off; a kernel panic reboots, which
 * -no-reboot turns into an exit). `logPath` receives the serial console and is kept as an artifact. A boot still
 * running after `timeoutMs` is killed and fails with the log's tail.
 *
 * TCG (software emulation) unless PXECACHE_TEST_QEMU_ACCEL says otherwise: `-accel kvm -accel tcg` is no safe
 * fallback, because a /dev/kvm that opens is not one that runs guests. On the development machine (nested, no vmx
 * flag) KVM initialises and the guest then hangs forever in the iPXE ROM; TCG boots in well under a minute.
 */
export async function pxeBoot(root: string, logPath: string, timeoutMs: number): Promise<BootResult> {
  const accel = process.env['PXECACHE_TEST_QEMU_ACCEL'] || 'tcg';
  await mkdir(dirname(logPath), { recursive: true });
  await rm(logPath, { force: true });
  const args = [
    ...['-accel', accel],
    ...['-m', '256', '-display', 'none', '-no-reboot', '-boot', 'n'],
    ...['-netdev', `user,id=n0,tftp=${root},bootfile=pxelinux.0`, '-device', 'e1000,netdev=n0'],
    ...['-serial', `file:${logPath}`, '-monitor', 'none'],
  ];
  const child = spawn(QEMU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('exit', (code, signal) => done({ code, signal })),
  );
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS).unref();
  }, timeoutMs);
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
  const { code, signal } = await Promise.race([exited, spawnError]).finally(() => clearTimeout(timer));
  const log = await readFile(logPath, 'utf8').catch(() => '');
  if (timedOut) {
    throw new Error(
      `QEMU PXE boot still running after ${timeoutMs} ms (killed); serial log ${logPath}, tail:\n${tail(log)}` +
        (output ? `\nqemu output:\n${output}` : ''),
    );
  }
  const markers = [...log.matchAll(new RegExp(`^${MARKER} (\\S+)\\r?$`, 'gm'))].map((m) => m[1] as string);
  return { log, markers, code, signal };
}
