import { InputError, IntegrityError, PxeError } from './errors.js';
import { validatorsFor } from './fetch-job.js';
import { assertNoDirectoryCollision, type Target } from './fetch-target.js';
import type { FetchRequest } from './fetcher.js';
import { componentProblem, parentNames } from './naming.js';
import { keys } from './object-keys.js';
import { latestPointer } from './pointers.js';
import { versionOf, type StatusRecord, type VersionEntry } from './records.js';
import { publishSeed, stageBytes, type SeedDeps, type SeedOutcome, type Staged } from './seed.js';
import { readTar, tarEnd, tarHeader, tarPadding } from './tar.js';
import { getJson, readAll, type ObjectStore } from '../storage/object-store.js';

/**
 * A bundle (`pxecache export`, docs/air-gap.md) is a ustar archive: `pxecache-bundle.json` first, then one
 * `blobs/<sha256>` entry per distinct content. The manifest carries each name's current version as published
 * (sha256, size, URL, fetchedAt) and upstream's validators for it, so the store it is imported into holds the same
 * names and versions and its first revalidation upstream is conditional.
 */
export const BUNDLE_MANIFEST = 'pxecache-bundle.json';
const FORMAT = 'pxecache-bundle';
const FORMAT_VERSION = 1;
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

export interface BundleName extends Omit<VersionEntry, 'key'> {
  readonly name: string;
  readonly etag: string | null;
  readonly lastModified: string | null;
}

export interface BundleManifest {
  readonly format: typeof FORMAT;
  readonly version: typeof FORMAT_VERSION;
  readonly createdAt: string;
  readonly names: readonly BundleName[];
  readonly blobs: readonly { readonly sha256: string; readonly size: number }[];
}

/** Told as each blob streams through (progress on the CLI). */
export type BlobProgress = (entry: string, size: number) => { add(bytes: number): void; done(): void };

export const blobEntry = (sha256: string) => `blobs/${sha256}`;

/** The manifest of `names` (each must be published) and where each blob's bytes are in `store`. */
export async function bundleManifest(
  store: ObjectStore,
  names: readonly string[],
  createdAt: string,
): Promise<{ manifest: BundleManifest; keyOf: ReadonlyMap<string, string> }> {
  const entries: BundleName[] = [];
  const keyOf = new Map<string, string>();
  const blobs: { sha256: string; size: number }[] = [];
  for (const name of names) {
    const [current, status] = await Promise.all([
      latestPointer(store, name),
      getJson<StatusRecord>(store, keys.status(name)),
    ]);
    if (!current) throw new PxeError('not-found', `"${name}" is not published in this store`);
    // The validators upstream gave for exactly these bytes at this URL (a later 304 may have renewed them).
    const validators = validatorsFor(current.url, current, status);
    const { version, sha256, size, url, fetchedAt, basename, verifiedBy } = current;
    entries.push({
      name,
      version,
      sha256,
      size,
      url,
      fetchedAt,
      basename,
      ...(verifiedBy ? { verifiedBy } : {}),
      etag: validators?.etag ?? null,
      lastModified: validators?.lastModified ?? null,
    });
    if (!keyOf.has(sha256)) blobs.push({ sha256, size });
    keyOf.set(sha256, current.key);
  }
  return { manifest: { format: FORMAT, version: FORMAT_VERSION, createdAt, names: entries, blobs }, keyOf };
}

/**
 * The bundle's bytes, streamed from the store blob by blob. Each blob is hashed on its way out: a store whose bytes
 * no longer match their sha256 fails the export rather than passing the damage on.
 */
export async function* bundleBytes(
  deps: Pick<SeedDeps, 'store' | 'hasher'>,
  exported: { manifest: BundleManifest; keyOf: ReadonlyMap<string, string> },
  progress?: BlobProgress,
): AsyncGenerator<Uint8Array> {
  const { manifest, keyOf } = exported;
  const mtime = Date.parse(manifest.createdAt) / 1000;
  const json = new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`);
  yield tarHeader(BUNDLE_MANIFEST, json.byteLength, mtime);
  yield json;
  yield tarPadding(json.byteLength);
  for (const { sha256, size } of manifest.blobs) {
    const entry = blobEntry(sha256);
    const key = keyOf.get(sha256) ?? '';
    const object = await deps.store.get(key);
    if (!object || object.size !== size)
      throw new PxeError(
        'storage',
        `${entry}: the store holds ${object ? `${object.size} bytes` : 'nothing'} at ${key}`,
      );
    yield tarHeader(entry, size, mtime);
    const hash = deps.hasher();
    const shown = progress?.(entry, size);
    for await (const chunk of object.body) {
      hash.update(chunk);
      shown?.add(chunk.byteLength);
      yield chunk;
    }
    shown?.done();
    const actual = await hash.digest();
    if (actual !== sha256) throw new IntegrityError(`${entry} read from the store at ${key}`, sha256, actual);
    yield tarPadding(size);
  }
  yield tarEnd();
}

export interface BundleImport extends SeedDeps {
  /** The fetch rules for a (name, URL) pair: the same validation and messages as `fetch_boot_file`. */
  readonly resolve: (request: FetchRequest) => Target;
  readonly progress?: BlobProgress;
}

/**
 * Imports a bundle: the manifest is checked first (every name and URL under the fetch rules), then every blob is
 * staged and verified against the manifest's sha256 and size, and only when all are there and intact is anything
 * published. A corrupted or truncated bundle fails naming its entry, and leaves no staged bytes behind.
 */
export async function importBundle(
  deps: BundleImport,
  source: AsyncIterable<Uint8Array>,
): Promise<{ name: string; outcome: SeedOutcome; version: string; sha256: string }[]> {
  const entries = readTar(source);
  const first = (await entries.next()).value;
  if (!first || first.name !== BUNDLE_MANIFEST)
    throw new PxeError('bundle', `not a pxecache bundle: its first entry is not ${BUNDLE_MANIFEST}`);
  if (first.size > MAX_MANIFEST_BYTES) throw new PxeError('bundle', `${BUNDLE_MANIFEST} is implausibly large`);
  const manifest = parseManifest(await readAll(first.body), deps.resolve);
  for (const n of manifest.names) await assertNoDirectoryCollision(deps.store, n.name);
  const expected = new Map(manifest.blobs.map((b) => [blobEntry(b.sha256), b]));
  const staged = new Map<string, Staged>();
  try {
    for await (const entry of entries) {
      const blob = expected.get(entry.name);
      if (!blob || staged.has(blob.sha256))
        throw new PxeError('bundle', `entry ${entry.name} is not a blob the manifest lists (or comes twice)`);
      if (entry.size !== blob.size)
        throw new IntegrityError(`entry ${entry.name} size`, String(blob.size), String(entry.size));
      const shown = deps.progress?.(entry.name, entry.size);
      const got = await stageBytes(deps, entry.body, entry.size, shown && ((n) => shown.add(n)));
      shown?.done();
      staged.set(blob.sha256, got);
      if (got.sha256 !== blob.sha256 || got.size !== blob.size)
        throw new IntegrityError(`entry ${entry.name}`, `sha256 ${blob.sha256}`, `sha256 ${got.sha256}`);
    }
    const missing = [...expected.keys()].filter((entry) => !staged.has(entry.slice('blobs/'.length)));
    if (missing.length) throw new PxeError('bundle', `the bundle has no entry ${missing.join(', ')} (truncated?)`);
  } catch (err) {
    await Promise.all([...staged.values()].map((s) => deps.store.delete(s.dataKey)));
    throw err;
  }
  const results = [];
  for (const n of manifest.names) {
    const { name, basename, url, fetchedAt, verifiedBy, etag, lastModified } = n;
    const seed = { name, basename, url, fetchedAt, etag, lastModified, staged: staged.get(n.sha256) as Staged };
    const { outcome, record } = await publishSeed(deps, verifiedBy ? { ...seed, verifiedBy } : seed);
    results.push({ name, outcome, version: record.version, sha256: record.sha256 });
  }
  return results;
}

/** The manifest, checked: a bundle is input from elsewhere, so nothing in it is trusted before it is read. */
function parseManifest(bytes: Uint8Array, resolve: BundleImport['resolve']): BundleManifest {
  let raw: Partial<BundleManifest>;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes)) as Partial<BundleManifest>;
  } catch {
    throw new PxeError('bundle', `${BUNDLE_MANIFEST} is not JSON`);
  }
  const bad = (what: string) => new PxeError('bundle', `${BUNDLE_MANIFEST}: ${what}`);
  if (raw.format !== FORMAT || raw.version !== FORMAT_VERSION)
    throw bad(`format ${String(raw.format)} version ${String(raw.version)}; this pxecache reads ${FORMAT} version 1`);
  if (!Array.isArray(raw.names) || !Array.isArray(raw.blobs)) throw bad('needs "names" and "blobs" arrays');
  const sizes = new Map<string, number>();
  for (const b of raw.blobs) {
    if (!/^[0-9a-f]{64}$/.test(String(b?.sha256)) || !Number.isSafeInteger(b?.size) || b.size < 0)
      throw bad(`blob ${JSON.stringify(b)} needs a lowercase sha256 and a size`);
    sizes.set(b.sha256, b.size);
  }
  const seen = new Set<string>();
  raw.names.forEach((n, i) => {
    const at = `names[${i}]`;
    if (typeof n?.name !== 'string' || typeof n.url !== 'string' || typeof n.basename !== 'string')
      throw bad(`${at} needs a name, url and basename`);
    try {
      resolve({ name: n.name, url: n.url });
    } catch (err) {
      if (err instanceof InputError) throw bad(`${at}: ${err.message}`);
      throw err;
    }
    const problem = componentProblem(n.basename);
    if (problem) throw bad(`${at}: basename ${problem.replace(/^component /, '')}`);
    if (sizes.get(n.sha256) !== n.size || n.version !== versionOf(n.sha256))
      throw bad(`${at} (${n.name}): its sha256, size and version do not match a blob of the bundle`);
    if (typeof n.fetchedAt !== 'string' || Number.isNaN(Date.parse(n.fetchedAt))) throw bad(`${at}: bad fetchedAt`);
    for (const v of [n.etag, n.lastModified])
      if (v !== null && typeof v !== 'string') throw bad(`${at}: etag and lastModified are strings or null`);
    if (seen.has(n.name)) throw bad(`${at}: "${n.name}" comes twice`);
    seen.add(n.name);
  });
  for (const name of seen)
    for (const parent of parentNames(name))
      if (seen.has(parent)) throw bad(`"${parent}" is a file, so "${name}" cannot be created under it`);
  return raw as BundleManifest;
}
