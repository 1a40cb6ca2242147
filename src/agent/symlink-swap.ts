/**
 * Publishes a version by pointing `<name>` at `<name>-orig/<version>/<basename>`: the relative symlink is created
 * under a temporary name in the same directory and rename(2)'d over `<name>`. rename(2) replaces the directory entry
 * atomically, so a PXE client opening `<name>` gets the old file or the new one, never nothing. `rm` + `ln` and
 * `ln -sfn` (which is unlink + symlink) both leave a window where the name is missing.
 */
import { renameSync } from 'node:fs';
import { lstat, readlink, rename, symlink, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { PxeError } from '../core/errors.js';
import { isOwnTarget, tmpName } from './layout.js';
import type { EntryPaths } from './layout.js';
import { UnsafePathError, fsyncDir, kindOf, safeDir } from './safe-dirs.js';

export type SwapOutcome = 'unchanged' | 'created' | 'replaced';

/** A link prepared under its temporary name; `commit` is the single rename, so many can be committed back to back. */
export interface LinkSwap {
  readonly outcome: SwapOutcome;
  /** Directory whose entries change (fsync it after committing). */
  readonly dir: string;
  commit(): Promise<void>;
  /**
   * The same rename, synchronously: a set's renames run back to back with nothing of the event loop in between (an
   * awaited rename lets other work run between two, which a loaded server makes long). Throws and leaves the
   * temporary link for `abort` to remove.
   */
  commitSync(): void;
  /** Removes the temporary link when the swap is abandoned. */
  abort(): Promise<void>;
}

export class ForeignEntryError extends PxeError {
  readonly path: string;
  constructor(path: string, why: string) {
    super('foreign-entry', `[agent] ${path}: ${why}; not ours, left untouched (remove it to let pxecache manage it)`);
    this.path = path;
  }
}

/**
 * What publishing would do to `<name>`, or ForeignEntryError when it is not ours to replace. Sync calls it before
 * downloading so a refused name gets no `-orig/` directory either.
 */
export async function classifyLink(paths: EntryPaths): Promise<SwapOutcome> {
  const kind = await kindOf(paths.link);
  if (kind === 'absent') return 'created';
  if (kind === 'file') return 'replaced'; // left by the old smart proxy's `curl --output <name>`
  if (kind === 'dir') throw new ForeignEntryError(paths.link, 'is a directory');
  if (kind === 'other') throw new ForeignEntryError(paths.link, 'is not a regular file or symlink');
  const current = await readlink(paths.link);
  if (current === paths.linkTarget) return 'unchanged';
  if (isOwnTarget(basename(paths.link), current)) return 'replaced';
  // A symlink not into `<name>-orig/` was put there by someone on purpose (an operator pinning a hand-built kernel, a
  // link into another tool's tree). DESIGN.md says a boot file is ours only when it is a symlink into `<name>-orig/`;
  // unlike a plain file, which is exactly what smart-proxy leaves behind, replacing it would silently undo a human
  // decision. So refuse and report: `agent --once` then exits non-zero and names the path to look at.
  throw new ForeignEntryError(paths.link, `is a symlink to ${JSON.stringify(current)}, outside its -orig/ directory`);
}

/** Checks `<name>` and the version file, and creates the temporary link. Touches nothing when it refuses. */
export async function prepareLinkSwap(root: string, paths: EntryPaths): Promise<LinkSwap> {
  if ((await safeDir(root, paths.versionDirComponents)) === null) {
    throw new UnsafePathError(paths.versionDir, 'is missing or has a symlink or non-directory on its way');
  }
  const st = await lstat(paths.file).catch(() => null);
  if (!st?.isFile()) throw new PxeError('missing-version', `[agent] ${paths.file}: version file is not present`);

  const outcome = await classifyLink(paths);
  if (outcome === 'unchanged') {
    return {
      outcome,
      dir: paths.dir,
      commit: () => Promise.resolve(),
      commitSync: () => undefined,
      abort: () => Promise.resolve(),
    };
  }
  const tmp = join(paths.dir, tmpName());
  await symlink(paths.linkTarget, tmp);
  return {
    outcome,
    dir: paths.dir,
    async commit() {
      try {
        // Fails with EISDIR if a directory appeared at `<name>` meanwhile: rename never replaces a directory by a link.
        await rename(tmp, paths.link);
      } catch (err) {
        await unlink(tmp).catch(() => undefined);
        throw err;
      }
    },
    commitSync() {
      renameSync(tmp, paths.link);
    },
    abort: () => unlink(tmp).catch(() => undefined),
  };
}

/** Points `<name>` at the entry's version file; a no-op when it already does. */
export async function swapLink(root: string, paths: EntryPaths): Promise<SwapOutcome> {
  const swap = await prepareLinkSwap(root, paths);
  if (swap.outcome === 'unchanged') return swap.outcome;
  await swap.commit();
  await fsyncDir(swap.dir);
  return swap.outcome;
}
