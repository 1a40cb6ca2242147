/**
 * What a TFTP root looks like from outside the agent, checked against the versions the test published: every
 * `<name>` a relative symlink into `<name>-orig/<version>/` whose file is complete (its bytes hash to a published
 * version of that name, and `<version>` is that hash's prefix), and the agent's temporaries. Reads the disk only;
 * free of vitest imports.
 */
import { createHash } from 'node:crypto';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isTmpName } from '../../src/agent/layout.js';

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** sha256 of every version ever published, per name: a read or a link target must be one of them. */
export type Published = ReadonlyMap<string, ReadonlySet<string>>;

export interface LinkReport {
  /** The sha256 each name serves now, for the names whose link resolves to a complete published version. */
  readonly serving: Map<string, string>;
  /** One line per name whose link is missing, not ours, dangling, or points at an incomplete/unknown file. */
  readonly dangling: string[];
}

export async function inspectLinks(root: string, published: Published): Promise<LinkReport> {
  const serving = new Map<string, string>();
  const dangling: string[] = [];
  for (const [name, shas] of published) {
    const problem = await linkProblem(root, name, shas, serving);
    if (problem !== null) dangling.push(`${name}: ${problem}`);
  }
  return { serving, dangling };
}

async function linkProblem(
  root: string,
  name: string,
  shas: ReadonlySet<string>,
  serving: Map<string, string>,
): Promise<string | null> {
  const link = join(root, name);
  const st = await lstat(link).catch((err: NodeJS.ErrnoException) => err.code ?? 'lstat failed');
  if (typeof st === 'string') return `link ${st}`;
  if (!st.isSymbolicLink()) return 'not a symlink';
  const target = await readlink(link);
  const base = name.slice(name.lastIndexOf('/') + 1);
  const parts = target.split('/');
  // DESIGN.md "Edge layout": relative, `<base>-orig/<version>/<basename>`, never climbing out.
  if (parts.length !== 3 || parts[0] !== `${base}-orig` || parts.includes('..')) {
    return `link target ${JSON.stringify(target)} is not <base>-orig/<version>/<basename>`;
  }
  const file = join(dirname(link), target);
  const fst = await lstat(file).catch((err: NodeJS.ErrnoException) => err.code ?? 'lstat failed');
  if (typeof fst === 'string') return `dangling: ${target} ${fst}`;
  if (!fst.isFile()) return `${target} is not a regular file`;
  const sha = sha256(await readFile(file));
  if (!shas.has(sha)) return `${target} (${fst.size} bytes, sha256 ${sha}) is no complete published version`;
  if (parts[1] !== sha.slice(0, 16)) return `${target} holds version ${sha.slice(0, 16)}, not ${parts[1]}`;
  serving.set(name, sha);
  return null;
}

/** Paths (relative to `dir`) of the agent's temporaries below `dir`, without following symlinks. */
export async function tempsUnder(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  const dirents = await readdir(join(dir, rel), { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  for (const d of dirents) {
    const path = rel ? `${rel}/${d.name}` : d.name;
    if (isTmpName(d.name)) out.push(path);
    else if (d.isDirectory()) out.push(...(await tempsUnder(dir, path)));
  }
  return out;
}
