/**
 * What the corpus may and may not have touched on disk: full snapshots of the test's own temp area (type, size,
 * content hash, link target of every entry), and a look for the corpus marker around the places an escape would
 * land (the system temp dir, `/`, `/etc`, the working directory, the home directory), plus `/etc/passwd` itself.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';

/** Relative path -> signature (`d`, `f:<size>:<sha256>`, `l:<target>`). */
export type Tree = Map<string, string>;

export async function snapshotTree(root: string): Promise<Tree> {
  const out: Tree = new Map();
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  for (const e of entries) {
    const path = join(e.parentPath, e.name);
    const rel = relative(root, path);
    try {
      const st = await lstat(path);
      if (st.isSymbolicLink()) out.set(rel, `l:${await readlink(path)}`);
      else if (st.isDirectory()) out.set(rel, 'd');
      else if (st.isFile()) out.set(rel, `f:${st.size}:${hash(await readFile(path))}`);
      else out.set(rel, 'other');
    } catch (err) {
      // A temporary file of the store or the agent may vanish between readdir and lstat: it was inside anyway.
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
    }
  }
  return out;
}

/** Paths added, removed or changed between two snapshots, outside the `allowed` top-level directories. */
export function changesOutside(before: Tree, after: Tree, allowed: readonly string[]): string[] {
  const inside = (rel: string) => allowed.some((dir) => rel === dir || rel.startsWith(dir + sep));
  const out: string[] = [];
  for (const [rel, sig] of after) {
    if (inside(rel)) continue;
    if (!before.has(rel)) out.push(`added ${rel}`);
    else if (before.get(rel) !== sig) out.push(`changed ${rel}`);
  }
  for (const rel of before.keys()) if (!inside(rel) && !after.has(rel)) out.push(`removed ${rel}`);
  return out.sort();
}

/** Entries (one level deep) whose name contains `marker`, in the places a path escaping its root would land. */
export async function markedOutside(marker: string): Promise<string[]> {
  const places = [...new Set([tmpdir(), '/', '/etc', '/tmp', process.cwd(), homedir()])];
  const found: string[] = [];
  for (const dir of places) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) if (name.includes(marker)) found.push(join(dir, name));
  }
  return found.sort();
}

/** Size, mtime and content of a file an attacker would love to overwrite. */
export async function fingerprint(path: string): Promise<string> {
  const st = await lstat(path);
  return `${st.size}:${st.mtimeMs}:${hash(await readFile(path))}`;
}

export function hash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Every file under `root` whose content contains `needle`. */
export async function filesContaining(root: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath, e.name);
    const bytes = await readFile(path).catch(() => null);
    if (bytes?.includes(needle)) hits.push(relative(root, path));
  }
  return hits;
}
