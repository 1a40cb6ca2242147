/**
 * Boot-config files at the edge (the pxeconfig routes' output): path validation, read-only inspection, and the atomic
 * write (temporary name in the same directory, fsync, verify size + sha256, chmod 0644, rename, fsync the directory),
 * so a PXE client never reads a half-written config. No symlink below the root is ever followed.
 */
import { chmod, constants, lstat, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { IntegrityError, InputError } from '../core/errors.js';
import type { HasherFactory } from '../core/ports.js';
import { assertInside, tmpName } from './layout.js';
import { ensureDirs, fsyncDir, kindOf } from './safe-dirs.js';
import type { BlobRef, CatalogSource } from './source.js';

/** Where smart-proxy writes configs (core/pxeconfig.ts), and nowhere else: a catalog path outside is refused. */
const CONFIG_ROOTS: readonly string[] = ['pxelinux.cfg', 'grub', 'grub2', 'ztp.cfg', 'poap.cfg'];
/** "Build PXE Default" for Ztp and Poap writes the directory's own name as a file. */
const TOP_LEVEL_FILES: readonly string[] = ['ztp.cfg', 'poap.cfg'];
/** Like boot-file names, plus ":" (`grub2/grub.cfg-aa:bb:cc:dd:ee:ff`). */
const COMPONENT = /^[A-Za-z0-9._:+=@,-]+$/;
const MAX_COMPONENT_BYTES = 255;
const MAX_PATH_BYTES = 1024;

const byteLength = (s: string) => Buffer.byteLength(s);

/** Why a catalog path must not be written or deleted, or null when it is a path smart-proxy could have written. */
export function configPathProblem(path: string): string | null {
  if (path === '') return 'is empty';
  if (path.startsWith('/')) return 'must be relative (no leading "/")';
  if (byteLength(path) > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  const parts = path.split('/');
  for (const c of parts) {
    if (c === '') return 'has an empty path component';
    if (c === '.' || c === '..') return `has a "${c}" path component`;
    if (!COMPONENT.test(c)) return `has a component with characters outside [A-Za-z0-9._:+=@,-]`;
    if (c.startsWith('.') || c.startsWith('-')) return `component ${JSON.stringify(c)} starts with "." or "-"`;
    if (byteLength(c) > MAX_COMPONENT_BYTES) return `has a component longer than ${MAX_COMPONENT_BYTES} bytes`;
  }
  const first = parts[0] as string;
  if (!CONFIG_ROOTS.includes(first)) return `is outside the boot-config locations (${CONFIG_ROOTS.join(', ')})`;
  if (parts.length === 1 && !TOP_LEVEL_FILES.includes(first)) return `names the directory ${first} itself`;
  return null;
}

export interface ConfigTarget {
  readonly path: string;
  /** Absolute path of the file. */
  readonly file: string;
  /** Components of its directory below the root. */
  readonly dirComponents: readonly string[];
}

/** The target of a catalog path; throws InputError for a path that is refused (nothing may be touched for it). */
export function configTarget(root: string, path: string): ConfigTarget {
  const problem = configPathProblem(path);
  if (problem) throw new InputError('path', `config path ${JSON.stringify(path)} ${problem}; refused`);
  const parts = path.split('/');
  const file = join(root, ...parts);
  assertInside(root, file);
  return { path, file, dirComponents: parts.slice(0, -1) };
}

export type TargetState =
  | { readonly kind: 'absent' }
  | { readonly kind: 'file'; readonly size: number }
  | { readonly kind: 'symlink' }
  /** A directory, a fifo, ... at the path, or a non-directory (or symlink) on the way to it. */
  | { readonly kind: 'blocked'; readonly why: string };

/** What is at a config path, read-only: never creates a directory and never walks through a symlink. */
export async function inspectTarget(root: string, target: ConfigTarget): Promise<TargetState> {
  let at = root;
  for (const c of target.dirComponents) {
    at = join(at, c);
    const kind = await kindOf(at);
    // A missing parent means the file is missing too: the write creates the chain.
    if (kind === 'absent') return { kind: 'absent' };
    if (kind !== 'dir') return { kind: 'blocked', why: `${at} is a ${kind}, not a directory` };
  }
  const kind = await kindOf(target.file);
  if (kind === 'absent' || kind === 'symlink') return { kind };
  if (kind === 'file') return { kind, size: (await lstat(target.file)).size };
  return { kind: 'blocked', why: `${target.file} is a ${kind === 'dir' ? 'directory' : kind}, not a file` };
}

/** The sha256 of a regular file, or null when the path is not one (O_NOFOLLOW: a symlink is never read through). */
export async function fileSha256(file: string, hasher: HasherFactory): Promise<string | null> {
  let fh;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'ELOOP') return null;
    throw err;
  }
  try {
    if (!(await fh.stat()).isFile()) return null;
    const h = hasher();
    for await (const chunk of fh.createReadStream({ autoClose: false }) as AsyncIterable<Uint8Array>) h.update(chunk);
    return await h.digest();
  } finally {
    await fh.close();
  }
}

/**
 * Writes the blob's bytes to the target atomically. Parent directories are created through the no-symlink walk; the
 * caller has checked that the path itself is not a directory (rename(2) would refuse one anyway).
 */
export async function writeConfigFile(opts: {
  root: string;
  target: ConfigTarget;
  blob: BlobRef;
  source: CatalogSource;
  hasher: HasherFactory;
  signal?: AbortSignal;
}): Promise<void> {
  const { target, blob } = opts;
  const { path: dir } = await ensureDirs(opts.root, target.dirComponents);
  const tmp = join(dir, tmpName());
  // 'wx' = O_CREAT|O_EXCL: never opens an existing file or follows a symlink planted at the temp name.
  const fh = await open(tmp, 'wx', 0o600);
  let closed = false;
  try {
    const h = opts.hasher();
    let count = 0;
    for await (const chunk of await opts.source.openBlob(blob, 0, opts.signal)) {
      count += chunk.byteLength;
      if (count > blob.size)
        throw new IntegrityError(`[agent] config ${target.path} size`, String(blob.size), `at least ${count}`);
      h.update(chunk);
      let at = 0;
      while (at < chunk.byteLength) at += (await fh.write(chunk, at, chunk.byteLength - at)).bytesWritten;
    }
    await fh.sync();
    await fh.close();
    closed = true;
    if (count !== blob.size)
      throw new IntegrityError(`[agent] config ${target.path} size`, String(blob.size), String(count));
    const sha256 = await h.digest();
    if (sha256 !== blob.sha256) throw new IntegrityError(`[agent] config ${target.path} sha256`, blob.sha256, sha256);
    // World-readable: tftpd-hpa typically runs as an unprivileged user.
    await chmod(tmp, 0o644);
    await rename(tmp, target.file);
  } catch (err) {
    if (!closed) await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
}
