/**
 * Read-only comparisons of the TFTP root with a catalog, and the start-up sweep of temporaries. Neither follows a
 * symlink below the root: a planted `root/boot -> /etc` is reported (check) or skipped (sweep), never walked into.
 */
import { lstat, readdir, readlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe } from '../core/errors.js';
import type { Logger } from '../core/ports.js';
import type { CatalogEntry } from '../core/records.js';
import { pathsOf } from './activate.js';
import { isTmpName } from './layout.js';
import { isNotFound, kindOf, safeDir } from './safe-dirs.js';

/** Why `<root>/<name>` does not serve the entry's version, or null when it does. */
export async function entryProblem(root: string, entry: CatalogEntry): Promise<string | null> {
  let paths;
  try {
    paths = pathsOf(root, entry);
  } catch (err) {
    return `${JSON.stringify(entry.name)}: refused: ${describe(err)}`;
  }
  if ((await safeDir(root, paths.versionDirComponents)) === null) {
    return `${entry.name}: ${paths.versionDir} is missing or has a symlink or non-directory on its way`;
  }
  const kind = await kindOf(paths.link);
  if (kind !== 'symlink') return `${entry.name}: ${paths.link} is ${kind === 'absent' ? 'missing' : `a ${kind}`}`;
  const target = await readlink(paths.link);
  if (target !== paths.linkTarget) return `${entry.name}: links to ${target}, catalog says ${paths.linkTarget}`;
  try {
    const st = await lstat(paths.file);
    if (!st.isFile()) return `${entry.name}: ${paths.file} is not a regular file`;
    if (st.size !== entry.size) return `${entry.name}: ${paths.file} has ${st.size} bytes, catalog says ${entry.size}`;
  } catch (err) {
    if (isNotFound(err)) return `${entry.name}: ${paths.file} is missing`;
    throw err;
  }
  return null;
}

export async function rootProblems(root: string, entries: readonly CatalogEntry[]): Promise<string[]> {
  const problems: string[] = [];
  for (const entry of entries) {
    const problem = await entryProblem(root, entry);
    if (problem !== null) problems.push(problem);
  }
  return problems;
}

/**
 * Removes `.pxecache-tmp-*` files and links a crashed run left behind. Walks real directories only (Dirent types are
 * lstat's, so a symlinked directory is never entered) and touches nothing without the prefix, which no published name
 * can carry since names never start with ".".
 */
export async function removeStaleTemps(dir: string, logger: Logger): Promise<number> {
  let removed = 0;
  let dirents;
  try {
    dirents = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isNotFound(err)) return 0;
    throw err;
  }
  for (const d of dirents) {
    const path = join(dir, d.name);
    if (isTmpName(d.name) && (d.isFile() || d.isSymbolicLink())) {
      await unlink(path).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
      removed++;
      logger.debug('agent: removed stale temporary', { path });
    } else if (d.isDirectory()) {
      removed += await removeStaleTemps(path, logger);
    }
  }
  return removed;
}
