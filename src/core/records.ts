/** Records persisted in the store and the public shapes derived from them (DESIGN.md "Native contract"). */

export interface VersionEntry {
  readonly version: string;
  readonly sha256: string;
  readonly size: number;
  readonly url: string;
  readonly fetchedAt: string;
  /** URL basename as written in the request; the file name inside `<name>-orig/<version>/` at the edge. */
  readonly basename: string;
  /** Store key of the bytes. */
  readonly key: string;
  /** The upstream checksum document the bytes matched; null or absent: upstream published none for this file. */
  readonly verifiedBy?: VerifiedBy | null;
}

/** An upstream checksum document that lists a file (`.treeinfo` `[checksums]`, `SHA256SUMS`, `MD5SUMS`). */
export interface VerifiedBy {
  readonly kind: 'treeinfo' | 'sha256sums' | 'md5sums';
  /** The document's URL (credentials redacted). */
  readonly url: string;
  readonly algorithm: 'sha256' | 'md5';
}

/** A pointer moved by an operator (rollback) stays there until unpinned: revalidations record, never publish. */
export interface Pin {
  readonly version: string;
  readonly at: string;
  readonly reason: 'rollback' | 'pin';
}

/** Upstream's newer bytes, stored and verified while the name was pinned: published by `unpin`. */
export interface HeldVersion extends VersionEntry {
  readonly etag: string | null;
  readonly lastModified: string | null;
}

/** A kept version as the public status shows it. */
export type PublicVersion = Omit<VersionEntry, 'key' | 'basename' | 'verifiedBy'>;

/** One entry of a name's pointer log; created once (create-only write), never modified. */
export interface PointerRecord extends VersionEntry {
  readonly name: string;
  readonly generation: number;
  readonly etag: string | null;
  readonly lastModified: string | null;
  /** Clock reading when the job that published this started: a job that started earlier never replaces it. */
  readonly startedAt: number;
  /** Kept versions, newest first, the current one included. */
  readonly versions: readonly VersionEntry[];
  /** Set by a rollback (or pin); null or absent: revalidations publish as usual. */
  readonly pinned?: Pin | null;
}

export type FileState = 'fetching' | 'ready' | 'failed' | 'nfs-noop';

export interface ErrorInfo {
  readonly code: string;
  readonly message: string;
}

/** Validators upstream gave for bytes we hold: used for the next conditional GET. */
export interface UpstreamValidators {
  readonly url: string;
  readonly sha256: string;
  readonly etag: string | null;
  readonly lastModified: string | null;
}

/** Last-writer-wins status of a name, written only by the holder of a fetch lease. */
export interface StatusRecord {
  readonly name: string;
  readonly url: string;
  readonly state: FileState;
  readonly jobId: string;
  readonly startedAt: number;
  readonly checkedAt: string | null;
  readonly error: ErrorInfo | null;
  readonly upstream: UpstreamValidators | null;
  /** Newer upstream bytes a revalidation found while the name was pinned (published by unpin). */
  readonly held?: HeldVersion | null;
}

/** GET /api/v1/files/<name> */
export interface FileStatus {
  readonly name: string;
  readonly url: string | null;
  readonly state: FileState;
  readonly version: string | null;
  readonly sha256: string | null;
  readonly size: number | null;
  readonly fetchedAt: string | null;
  readonly checkedAt: string | null;
  readonly error: ErrorInfo | null;
  readonly generation: number;
  readonly versions: readonly PublicVersion[];
  /** The checksum document the published version matched, or null. */
  readonly verifiedBy: VerifiedBy | null;
  /** Set while an operator's rollback holds the pointer (until unpin), else null. */
  readonly pinned: Pin | null;
  /** Upstream's newer version recorded while pinned, or null. */
  readonly held: PublicVersion | null;
}

/** One published name as agents consume it (GET /api/v1/files). */
export interface CatalogEntry {
  readonly name: string;
  readonly generation: number;
  readonly version: string;
  readonly sha256: string;
  readonly size: number;
  readonly basename: string;
  readonly url: string;
  readonly fetchedAt: string;
  /** Store key of the bytes, for agents that read the store directly. */
  readonly key: string;
  /** Kept versions newest first (the agent keeps the previous one on disk for rollbacks). */
  readonly versions: readonly string[];
}

export interface Catalog {
  /** Change-log position the entries are at least as new as (see events.ts); the ETag derives from it. */
  readonly cursor: string;
  readonly etag: string;
  readonly entries: readonly CatalogEntry[];
}

/** Versions are content-derived: the same bytes are the same version whatever URL they came from. */
export function versionOf(sha256: string): string {
  return sha256.slice(0, 16);
}

/** One boot-config file of one site (pxeconfig routes), as the agent consumes it. */
export interface ConfigEntry {
  /** Relative path in the TFTP root, smart-proxy's fixed name (e.g. `pxelinux.cfg/01-aa-bb-cc-dd-ee-ff`). */
  readonly path: string;
  /** Deleted by Foreman: the agent removes the file if it wrote it. */
  readonly deleted: boolean;
  readonly sha256: string;
  readonly size: number;
  readonly key: string;
  readonly updatedAt: string;
}

/** Last-writer-wins record of one boot-config path, per site. */
export interface ConfigRecord extends ConfigEntry {
  readonly site: string;
  readonly variant: string;
  readonly mac: string | null;
  /** What Foreman sent besides the config (bootloader universe: targetos, release, arch, bootfile_suffix). */
  readonly params: Readonly<Record<string, string>>;
}

export interface ConfigCatalog {
  readonly site: string;
  readonly cursor: string;
  readonly etag: string;
  readonly entries: readonly ConfigEntry[];
}

/**
 * GET /api/v1/changes: what changed after a cursor (`complete: false`: only the names and config paths that changed,
 * at their current state), or everything (`complete: true`: every published name and every config of the site,
 * tombstones included) when no cursor was given or the change log no longer reaches back to it.
 */
export interface Changes {
  readonly cursor: string;
  readonly complete: boolean;
  /** The site whose configs are included; `null`: none asked for (`configs` is empty). */
  readonly site: string | null;
  readonly files: readonly CatalogEntry[];
  readonly configs: readonly ConfigEntry[];
}
