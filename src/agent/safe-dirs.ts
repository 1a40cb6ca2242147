/**
 * Directory walks that never leave the TFTP root. Every component between the root and a file we write must be a
 * real directory: if someone planted `root/boot -> /etc`, following it would write (or GC would delete) outside the
 * root. Node has no openat(2)/O_NOFOLLOW walk, so we lstat each component; the remaining race needs an attacker who
 * can already write inside the root while we run, which is outside this agent's threat model.
 */
import { lstat, mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { PxeError } from '../core/errors.js';

export class UnsafePathError extends PxeError {
  readonly path: string;
  constructor(path: string, why: string) {
    super('unsafe-path', `[agent] ${path}: ${why}; refusing to write through it`);
    this.path = path;
  }
}

function isErrno(err: unknown, code: string): boolean {
  return (err as { code?: unknown } | null)?.code === code;
}

export function isNotFound(err: unknown): boolean {
  return isErrno(err, 'ENOENT');
}

/** What a path is, without following a symlink at its last component. */
export async function kindOf(path: string): Promise<'absent' | 'file' | 'dir' | 'symlink' | 'other'> {
  try {
    const st = await lstat(path);
    if (st.isSymbolicLink()) return 'symlink';
    if (st.isDirectory()) return 'dir';
    if (st.isFile()) return 'file';
    return 'other';
  } catch (err) {
    if (isNotFound(err)) return 'absent';
    throw err;
  }
}

/**
 * Directories whose entries changed, fsync'd once each at `flush()` rather than once per change: a first sync of
 * 1,000 names would otherwise fsync their shared parent 1,000 times. Whatever depends on those entries being durable
 * (a link pointing into them) must wait for `flush()`.
 */
const DIR_SYNCS_AT_ONCE = 16;

export class DirSyncs {
  private readonly dirs = new Set<string>();
  add(dir: string): void {
    this.dirs.add(dir);
  }
  /**
   * Every directory added since the last flush, fsync'd, a few at a time (each holds a file descriptor while its
   * fsync runs: 20,000 at once ran out of them); throws the first failure after trying them all.
   */
  async flush(): Promise<void> {
    const dirs = [...this.dirs];
    this.dirs.clear();
    let next = 0;
    let failure: { reason: unknown } | null = null;
    const worker = async () => {
      while (next < dirs.length) {
        const dir = dirs[next++] as string;
        await fsyncDir(dir).catch((reason: unknown) => void (failure ??= { reason }));
      }
    };
    await Promise.all(Array.from({ length: Math.min(DIR_SYNCS_AT_ONCE, dirs.length) }, worker));
    if (failure) throw (failure as { reason: unknown }).reason;
  }
}

/**
 * The root itself is trusted as configured (it may well be a symlink, e.g. /srv/tftp -> /var/lib/tftpboot); only what
 * lies below it is checked.
 *
 * Creates `root/c0/c1/...` as needed (mode 0755, so tftpd running as another user can traverse it), refusing any
 * existing component that is a symlink or not a directory. Returns the absolute path, and whether its last component
 * was created now (then nothing is in it yet). A new entry is made durable by fsyncing its parent: at once, or
 * through `syncs` when given.
 */
export async function ensureDirs(
  root: string,
  components: readonly string[],
  syncs?: DirSyncs,
): Promise<{ path: string; created: boolean }> {
  let at = root;
  // Below a directory created just now nothing exists yet: no lstat (and no ENOENT thrown) for each deeper component.
  let creating = false;
  for (const c of components) {
    const parent = at;
    at = join(at, c);
    let kind = creating ? 'absent' : await kindOf(at);
    if (kind === 'absent') {
      try {
        await mkdir(at, { mode: 0o755 });
        // The new entry must survive a crash as much as the file we are about to put inside it.
        if (syncs) syncs.add(parent);
        else await fsyncDir(parent);
        creating = true;
        continue;
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
      creating = false;
      kind = await kindOf(at);
    }
    if (kind !== 'dir')
      throw new UnsafePathError(at, kind === 'symlink' ? 'is a symlink' : `is a ${kind}, not a directory`);
  }
  return { path: at, created: creating };
}

/** Like ensureDirs without creating: the path, or null when a component is missing or unsafe. */
export async function safeDir(root: string, components: readonly string[]): Promise<string | null> {
  let at = root;
  for (const c of components) {
    at = join(at, c);
    if ((await kindOf(at)) !== 'dir') return null;
  }
  return at;
}

/** A rename or a new entry is durable only once its directory is fsync'd (rename(2) itself is atomic, not durable). */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
