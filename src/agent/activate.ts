/**
 * Materialises one version at the edge: `<name>-orig/<version>/<basename>` is written under a temporary name in the
 * same directory, fsync'd, verified (size + sha256), then rename(2)'d into place, so a PXE client never sees a partial
 * file. The link swap lives in symlink-swap.ts and is re-exported here.
 */
import { lstat, open, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { IntegrityError, PxeError, describe } from '../core/errors.js';
import type { HasherFactory, Logger, TransferProgress } from '../core/ports.js';
import { silentLogger, sleep } from '../core/ports.js';
import type { CatalogEntry } from '../core/records.js';
import type { CatalogSource } from './source.js';
import { entryPaths, tmpName } from './layout.js';
import type { EntryPaths } from './layout.js';
import { ensureDirs, fsyncDir, isNotFound, type DirSyncs } from './safe-dirs.js';

export { classifyLink, prepareLinkSwap, swapLink } from './symlink-swap.js';
export type { LinkSwap, SwapOutcome } from './symlink-swap.js';

export interface EnsureVersionOptions {
  readonly root: string;
  readonly entry: CatalogEntry;
  readonly source: CatalogSource;
  readonly hasher: HasherFactory;
  readonly logger?: Logger;
  /** How many times a transient read error may be resumed from the byte reached. Default 3. */
  readonly maxResumes?: number;
  /** Pause before resume n is `resumeDelayMs * n`. Default 500. */
  readonly resumeDelayMs?: number;
  readonly signal?: AbortSignal;
  /**
   * Defer the directory fsyncs to the caller (one per directory for a whole pass); the file is then durable only
   * after `syncs.flush()`, which must come before anything links to it. Default: fsync'd before returning.
   */
  readonly syncs?: DirSyncs;
  /** The download's bytes as they arrive, resumes included (`agent --once` draws progress from them). */
  readonly onProgress?: TransferProgress;
}

export interface EnsureVersionResult {
  readonly paths: EntryPaths;
  /** Bytes read from the source (0 when the file was already present). */
  readonly downloaded: number;
  readonly reused: boolean;
}

/** Paths for an entry, refusing an entry whose version is not derived from its sha256 (versions are content-derived). */
export function pathsOf(root: string, entry: CatalogEntry): EntryPaths {
  if (!/^[0-9a-f]{64}$/.test(entry.sha256))
    throw new IntegrityError(`[agent] ${entry.name} sha256`, 'hex', entry.sha256);
  if (entry.version !== entry.sha256.slice(0, 16)) {
    throw new IntegrityError(`[agent] ${entry.name} version`, entry.sha256.slice(0, 16), entry.version);
  }
  if (!Number.isSafeInteger(entry.size) || entry.size < 0) {
    throw new IntegrityError(`[agent] ${entry.name} size`, 'a non-negative integer', String(entry.size));
  }
  return entryPaths(root, entry.name, entry.version, entry.basename);
}

/** Present-and-right-size counts as done: only this agent writes there, always after verifying the sha256. */
async function isPresent(file: string, size: number): Promise<boolean> {
  try {
    const st = await lstat(file);
    return st.isFile() && st.size === size;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

export async function ensureVersionFile(opts: EnsureVersionOptions): Promise<EnsureVersionResult> {
  const { root, entry } = opts;
  const paths = pathsOf(root, entry);
  // Walk even when the file looks present: a planted symlink in the chain must not make a foreign file "ours".
  const dir = await ensureDirs(root, paths.versionDirComponents, opts.syncs);
  if (!dir.created && (await isPresent(paths.file, entry.size))) return { paths, downloaded: 0, reused: true };

  const tmp = join(paths.versionDir, tmpName());
  // 'wx' = O_CREAT|O_EXCL: never opens an existing file or follows a symlink planted at the temp name.
  const fh = await open(tmp, 'wx', 0o600);
  let closed = false;
  try {
    const { count, sha256 } = await download(opts, fh);
    if (count !== entry.size) throw new IntegrityError(`[agent] ${entry.name} size`, String(entry.size), String(count));
    if (sha256 !== entry.sha256) throw new IntegrityError(`[agent] ${entry.name} sha256`, entry.sha256, sha256);
    // World-readable once verified: tftpd-hpa typically runs as an unprivileged user.
    await fh.chmod(0o644);
    await fh.sync();
    await fh.close();
    closed = true;
    await rename(tmp, paths.file);
    if (opts.syncs) opts.syncs.add(paths.versionDir);
    else await fsyncDir(paths.versionDir);
    return { paths, downloaded: count, reused: false };
  } catch (err) {
    if (!closed) await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw localFailure(err, entry, paths);
  }
}

/**
 * A local file-system error (ENOSPC, EDQUOT, EIO, EROFS...) said only "ENOSPC: no space left on device, write": the
 * operator reading `agent --once` or agent-last-sync.json needs the file and the space it wanted, and to know that
 * nothing was published. Errors of the source and of verification keep their own messages.
 */
function localFailure(err: unknown, entry: CatalogEntry, paths: EntryPaths): unknown {
  if (err instanceof PxeError || typeof (err as { syscall?: unknown } | null)?.syscall !== 'string') return err;
  return new PxeError(
    'local-write',
    `[agent] ${entry.name}: writing ${paths.file} (${entry.size} bytes) failed: ${describe(err)}; ` +
      'nothing was published, the previous version keeps serving',
    { cause: err },
  );
}

/** A failure of the source, which may be resumed; errors writing locally are not wrapped and end the download. */
class ReadFailure {
  constructor(readonly cause: unknown) {}
}

async function download(opts: EnsureVersionOptions, fh: FileHandle): Promise<{ count: number; sha256: string }> {
  const { entry, source, signal } = opts;
  const logger = opts.logger ?? silentLogger;
  const maxResumes = opts.maxResumes ?? 3;
  const delay = opts.resumeDelayMs ?? 500;
  const hasher = opts.hasher();
  const out = batchedWriter(fh);
  let count = 0;
  const progress = opts.onProgress ?? (() => undefined);
  progress(entry.name, 0, entry.size);
  try {
    await readAll();
  } finally {
    progress(entry.name, count, entry.size, true);
  }
  return { count, sha256: await hasher.digest() };

  async function readAll(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const failure = await readFrom(count);
      await out.flush();
      if (failure === null) break;
      signal?.throwIfAborted();
      if (failure.cause instanceof IntegrityError) throw failure.cause;
      if (attempt >= maxResumes) {
        throw new PxeError(
          'source-read',
          `[agent] ${entry.name}: reading ${entry.sha256} failed after ${attempt + 1} attempts at byte ${count}/${entry.size}: ${describe(failure.cause)}`,
          { cause: failure.cause },
        );
      }
      // Resuming is safe only because the blob is immutable and its sha256 known: the digest covers every byte.
      logger.warn('agent: blob read failed, resuming', {
        name: entry.name,
        offset: count,
        attempt: attempt + 1,
        error: describe(failure.cause),
      });
      await sleep(delay * (attempt + 1), signal);
    }
  }

  async function readFrom(offset: number): Promise<ReadFailure | null> {
    let it: AsyncIterator<Uint8Array>;
    try {
      it = (await source.openBlob(entry, offset, signal))[Symbol.asyncIterator]();
    } catch (err) {
      return new ReadFailure(err);
    }
    let done = false;
    try {
      for (;;) {
        let r: IteratorResult<Uint8Array>;
        try {
          r = await it.next();
        } catch (err) {
          done = true; // a throwing iterator is finished; do not call return() on it
          return new ReadFailure(err);
        }
        if (r.done) {
          done = true;
          // A clean end before `size` bytes is a truncation: resumable like any other read failure.
          return count < entry.size
            ? new ReadFailure(new PxeError('truncated', `stream ended at byte ${count}`))
            : null;
        }
        const chunk = r.value;
        if (count + chunk.byteLength > entry.size) {
          return new ReadFailure(
            new IntegrityError(
              `[agent] ${entry.name} size`,
              String(entry.size),
              `at least ${count + chunk.byteLength}`,
            ),
          );
        }
        hasher.update(chunk);
        await out.add(chunk);
        count += chunk.byteLength;
        progress(entry.name, count, entry.size);
      }
    } finally {
      if (!done) await it.return?.().catch(() => undefined);
    }
  }
}

/** Bytes gathered before one write: a socket delivers 16-64 KiB chunks, and each write is a thread-pool round trip. */
const WRITE_BATCH = 1 << 20;

/**
 * Chunks written in batches of about WRITE_BATCH bytes with one writev(2) each. Holds on to the chunks until then,
 * which is safe because every source hands out fresh buffers (sockets and file streams do; none reuses one).
 */
function batchedWriter(fh: FileHandle): { add(chunk: Uint8Array): Promise<void>; flush(): Promise<void> } {
  let pending: Uint8Array[] = [];
  let size = 0;
  const flush = async () => {
    if (pending.length === 0) return;
    const chunks = pending;
    const total = size;
    pending = [];
    size = 0;
    const { bytesWritten } = await fh.writev(chunks);
    // Short writes are rare on files (a full disk ends with an error): finish them chunk by chunk.
    if (bytesWritten < total) await writeAll(fh, concatFrom(chunks, bytesWritten));
  };
  return {
    async add(chunk) {
      pending.push(chunk);
      size += chunk.byteLength;
      if (size >= WRITE_BATCH) await flush();
    },
    flush,
  };
}

function concatFrom(chunks: readonly Uint8Array[], skip: number): Uint8Array {
  const total = chunks.reduce((n, c) => n + c.byteLength, 0) - skip;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    const from = Math.min(c.byteLength, skip);
    skip -= from;
    out.set(c.subarray(from), at);
    at += c.byteLength - from;
  }
  return out;
}

async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let at = 0;
  while (at < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, at, chunk.byteLength - at);
    at += bytesWritten;
  }
}
