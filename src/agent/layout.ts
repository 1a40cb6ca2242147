/**
 * Pure path arithmetic for the edge layout (DESIGN.md "Edge layout (TFTP root), must hold"):
 *
 *   <root>/<dir>/<base>                          -> <base>-orig/<version>/<basename>   (relative symlink)
 *   <root>/<dir>/<base>-orig/<version>/<basename>                                     (complete, verified file)
 *
 * No I/O here: activate, gc and sync share these so the layout is spelled in exactly one place.
 */
import { randomBytes } from 'node:crypto';
import { join, relative, isAbsolute, sep } from 'node:path';
import { InputError } from '../core/errors.js';
import { componentProblem, validateName } from '../core/naming.js';

/** Temporary files and links. Names can never start with '.', so a temp name never collides with a published one. */
export const TMP_PREFIX = '.pxecache-tmp-';
export const VERSIONS_SUFFIX = '-orig';

const VERSION_RE = /^[0-9a-f]{16}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;

export interface EntryPaths {
  /** Absolute directory holding the link and the versions directory (`<root>/boot`). */
  readonly dir: string;
  /** `<root>/<name>`: the symlink PXE clients read. */
  readonly link: string;
  /** `<root>/<name>-orig`. */
  readonly versionsDir: string;
  /** `<root>/<name>-orig/<version>`. */
  readonly versionDir: string;
  /** `<root>/<name>-orig/<version>/<basename>`. */
  readonly file: string;
  /**
   * `<base>-orig/<version>/<basename>`, relative to the link's directory. Relative because tftpd-hpa `--secure`
   * chroots into the root, where an absolute target no longer resolves (verified); it also survives moving the root.
   */
  readonly linkTarget: string;
  /** Components of `dir` below the root (`['boot']`), for the no-symlink walk. */
  readonly dirComponents: readonly string[];
  /** Components of `versionDir` below the root (`['boot', 'x-orig', '<version>']`). */
  readonly versionDirComponents: readonly string[];
}

/** Versions are 16 lowercase hex chars (`versionOf` in core/records.ts); GC only ever touches such directories. */
export function isVersion(s: string): boolean {
  return VERSION_RE.test(s);
}

export function isSha256(s: string): boolean {
  return SHA256_RE.test(s);
}

export function isTmpName(s: string): boolean {
  return s.startsWith(TMP_PREFIX);
}

export function tmpName(): string {
  return TMP_PREFIX + randomBytes(8).toString('hex');
}

/** A basename is one component of a name and obeys the same rule (DESIGN.md "Names"). */
export function validateBasename(basename: string, field = 'basename'): void {
  // componentProblem, not validateName: "grub" is a fine file name even though it is a reserved first directory.
  const problem = componentProblem(basename);
  if (problem) throw new InputError(field, `${JSON.stringify(basename)} ${problem}`);
}

/** Paths of one name; throws InputError for anything that could escape `<root>` or break the layout. */
export function entryPaths(root: string, name: string, version: string, basename: string): EntryPaths {
  validateName(name, 'name');
  validateBasename(basename);
  if (!isVersion(version))
    throw new InputError('version', `must be 16 lowercase hex chars: ${JSON.stringify(version)}`);
  const parts = name.split('/');
  const base = parts.pop() as string; // validateName guarantees at least one non-empty component
  const dir = join(root, ...parts);
  const versionsDir = join(dir, base + VERSIONS_SUFFIX);
  const versionDir = join(versionsDir, version);
  const paths: EntryPaths = {
    dir,
    link: join(dir, base),
    versionsDir,
    versionDir,
    file: join(versionDir, basename),
    linkTarget: `${base}${VERSIONS_SUFFIX}/${version}/${basename}`,
    dirComponents: parts,
    versionDirComponents: [...parts, base + VERSIONS_SUFFIX, version],
  };
  // Belt and braces: validated names cannot escape, but the root is the one boundary that must never be crossed.
  assertInside(root, paths.file);
  assertInside(root, paths.link);
  return paths;
}

/** The version a link target of ours names (`<base>-orig/<version>/<file>`), or null when the target is not ours. */
export function versionOfTarget(name: string, target: string): string | null {
  const base = name.split('/').pop() ?? '';
  const parts = target.split('/');
  if (parts.length !== 3 || parts[0] !== base + VERSIONS_SUFFIX) return null;
  const [, version, file] = parts;
  if (version === undefined || !isVersion(version) || !file || file === '.' || file === '..') return null;
  return version;
}

/**
 * Whether a link target is one of ours: relative, into `<base>-orig/`, never climbing out. Any shape inside
 * `<base>-orig/` counts (an older agent may have used another file name), so it may be replaced.
 */
export function isOwnTarget(base: string, target: string): boolean {
  const parts = target.split('/');
  return parts[0] === base + VERSIONS_SUFFIX && parts.length >= 2 && !parts.includes('..');
}

export function assertInside(root: string, path: string): void {
  const rel = relative(root, path);
  if (rel === '' || rel === '..' || rel.startsWith('..' + sep) || isAbsolute(rel)) {
    throw new InputError('name', `resolves outside the TFTP root: ${path}`);
  }
}

/** True when `inner` is `outer` or below it (lexically; callers pass resolved or real paths). */
export function isWithin(outer: string, inner: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (!rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel));
}
