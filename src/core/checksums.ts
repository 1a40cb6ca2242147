/**
 * Where a medium publishes checksums of its boot files, and how to read them (docs/integrity.md "Upstream
 * checksums"). Pure: no I/O, no store; `checksum-check.ts` fetches and caches the documents.
 *
 * - RHEL/CentOS/Fedora trees (productmd): `<tree>/.treeinfo`, section `[checksums]`, lines
 *   `images/pxeboot/vmlinuz = sha256:<hex>`, paths relative to the tree root (the directory holding `images/`).
 * - Debian/Ubuntu installers: `SHA256SUMS` (older ones `MD5SUMS`) in the `images/` (`legacy-images/`) directory,
 *   lines `<hex>  ./netboot/debian-installer/amd64/linux`, paths relative to that directory; anything else: the
 *   same files in the file's own directory (Ubuntu's release directories).
 */
import type { VerifiedBy } from './records.js';

export type ChecksumAlgorithm = VerifiedBy['algorithm'];

/** A document that may list a file, and the name the file would have in it. */
export interface ChecksumSource {
  readonly kind: VerifiedBy['kind'];
  readonly url: URL;
  /** The file's path relative to the document's directory, percent-decoded, as a document lists it. */
  readonly entry: string;
}

/** One listed checksum: `<algorithm>:<lowercase hex>` (the form `.treeinfo` uses, kept for every kind). */
export type Listed = `${ChecksumAlgorithm}:${string}`;

/** Documents asked for per download at most: a tree has one of them, and each costs a round trip before publishing. */
export const MAX_CHECKSUM_DOCUMENTS = 3;

const HEX_LENGTH: Record<ChecksumAlgorithm, number> = { sha256: 64, md5: 32 };

/**
 * The documents that may list `file`, most specific first, at most MAX_CHECKSUM_DOCUMENTS. `md5`: whether MD5 can be
 * checked here (without it an `MD5SUMS` proves nothing and is not asked for).
 */
export function checksumSources(file: URL, opts: { readonly md5: boolean }): ChecksumSource[] {
  const segments = file.pathname.split('/');
  const dirOf = (count: number) => segments.slice(0, count).join('/') + '/';
  const entryOf = (from: number) => segments.slice(from).map(decode).join('/');
  const sources: ChecksumSource[] = [];
  const sums = (dir: string, entry: string) => {
    sources.push({ kind: 'sha256sums', url: new URL(`${dir}SHA256SUMS`, file), entry });
    if (opts.md5) sources.push({ kind: 'md5sums', url: new URL(`${dir}MD5SUMS`, file), entry });
  };
  // The last `images` segment above the file: a mirror's own path may contain one too (`/images/centos/...`).
  const at = segments.findLastIndex((s, i) => i < segments.length - 1 && (s === 'images' || s === 'legacy-images'));
  if (at > 0) {
    if (segments[at] === 'images')
      sources.push({ kind: 'treeinfo', url: new URL(`${dirOf(at)}.treeinfo`, file), entry: entryOf(at) });
    sums(dirOf(at + 1), entryOf(at + 1));
  }
  sums(dirOf(segments.length - 1), entryOf(segments.length - 1));
  const seen = new Set<string>();
  return sources.filter((s) => !seen.has(s.url.href) && seen.add(s.url.href)).slice(0, MAX_CHECKSUM_DOCUMENTS);
}

/**
 * `[checksums]` of a `.treeinfo` (INI): `path = algorithm:hex`. Other sections, comments and algorithms this code
 * cannot check (sha1, sha512) are skipped.
 */
export function parseTreeinfo(text: string): Map<string, Listed> {
  const entries = new Map<string, Listed>();
  let inChecksums = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.*)\]$/.exec(line);
    if (section) {
      inChecksums = section[1]?.trim().toLowerCase() === 'checksums';
      continue;
    }
    if (!inChecksums) continue;
    const m = /^(.+?)\s*[=:]\s*(sha256|md5):([0-9a-fA-F]+)$/.exec(line);
    if (!m) continue;
    const [, path = '', algorithm, hex = ''] = m;
    const listed = listedOf(algorithm as ChecksumAlgorithm, hex);
    if (listed) entries.set(normalise(path), listed);
  }
  return entries;
}

/**
 * `SHA256SUMS`/`MD5SUMS` as coreutils writes them (`<hex>  <path>`, `<hex> *<path>` in binary mode) or tagged
 * (`SHA256 (<path>) = <hex>`, `--tag` and BSD style). Lines of another algorithm or length are skipped.
 */
export function parseSums(text: string, algorithm: ChecksumAlgorithm): Map<string, Listed> {
  const entries = new Map<string, Listed>();
  const tag = algorithm.toUpperCase();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const plain = /^([0-9a-fA-F]+)\s+\*?(.+)$/.exec(line);
    const tagged = /^(\S+) \((.+)\) = ([0-9a-fA-F]+)$/.exec(line);
    const [hex, path] = plain ? [plain[1], plain[2]] : tagged?.[1] === tag ? [tagged[3], tagged[2]] : [];
    const listed = hex && path ? listedOf(algorithm, hex) : null;
    if (listed && path) entries.set(normalise(path), listed);
  }
  return entries;
}

function listedOf(algorithm: ChecksumAlgorithm, hex: string): Listed | null {
  return hex.length === HEX_LENGTH[algorithm] ? `${algorithm}:${hex.toLowerCase()}` : null;
}

/** `./a/b` and `a/b` name the same file (Debian lists `./netboot/...`). */
function normalise(path: string): string {
  return path.trim().replace(/^(\.\/)+/, '');
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
