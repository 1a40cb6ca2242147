/**
 * Per-name garbage collection of `<name>-orig/`: keeps the version the link points to, the one before it, and the
 * catalog's two newest (DESIGN.md: "GC keeps the current and at least one previous version per name; never deletes
 * what a link points to"). Only subdirectories named like versions are candidates; nothing else is ever touched.
 */
import { readdir, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../core/ports.js';
import { silentLogger } from '../core/ports.js';
import type { CatalogEntry } from '../core/records.js';
import { entryPaths, isVersion, versionOfTarget } from './layout.js';
import type { EntryPaths } from './layout.js';
import { kindOf, safeDir } from './safe-dirs.js';

/** The version `<name>` points to, or null when it is absent, a plain file, or not one of ours. */
export async function linkedVersion(paths: EntryPaths, name: string): Promise<string | null> {
  if ((await kindOf(paths.link)) !== 'symlink') return null;
  return versionOfTarget(name, await readlink(paths.link));
}

/** Versions GC must keep for an entry given what the link points to now. */
export function versionsToKeep(entry: CatalogEntry, current: string | null): Set<string> {
  const keep = new Set<string>([entry.version, ...entry.versions.slice(0, 2)]);
  if (current !== null) {
    keep.add(current);
    // "At least one previous version" relative to what is serving, even when a newer download failed.
    const at = entry.versions.indexOf(current);
    const previous = at >= 0 ? entry.versions[at + 1] : undefined;
    if (previous !== undefined) keep.add(previous);
  }
  return keep;
}

/** Removes unkept version directories of one name; returns the versions removed. */
export async function gcName(root: string, entry: CatalogEntry, logger: Logger = silentLogger): Promise<string[]> {
  const paths = entryPaths(root, entry.name, entry.version, entry.basename);
  // Only through real directories: through a planted symlink, `rm -r` would delete outside the root.
  const versionsDir = await safeDir(root, paths.versionDirComponents.slice(0, -1));
  if (versionsDir === null) return [];
  const keep = versionsToKeep(entry, await linkedVersion(paths, entry.name));
  const removed: string[] = [];
  for (const d of await readdir(versionsDir, { withFileTypes: true })) {
    // Dirent types come from lstat semantics: a symlink named like a version is not a directory and is left alone.
    if (!d.isDirectory() || !isVersion(d.name) || keep.has(d.name)) continue;
    // Re-read the link right before deleting: whatever it points to now is never deleted.
    if ((await linkedVersion(paths, entry.name)) === d.name) continue;
    await rm(join(versionsDir, d.name), { recursive: true, force: true });
    removed.push(d.name);
    logger.info('agent: removed old version', { name: entry.name, version: d.name });
  }
  return removed;
}
