import { randomBytes } from 'node:crypto';
import type { BigIntStats, Dirent, ReadStream } from 'node:fs';
import { link, mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { PreconditionFailedError, PxeError, StorageError } from '../core/errors.js';
import { byteSpan, keyProblem, type ObjectStore, type PutBody } from './object-store.js';

const DRIVER = 'file';
const TMP_PREFIX = '.tmp-';
/** Write and read unit: large enough that a 1 GiB object costs ~1k syscalls, small enough to stay cache-friendly. */
const CHUNK = 1 << 20;
const DEFAULT_LIMIT = 1000;

/**
 * The embedded default store: one file per key under `root`. Writes go to a `.tmp-*` sibling, are fsynced and then
 * renamed (overwrite) or hard-linked (create-only: link(2) fails with EEXIST atomically, also across processes
 * sharing the directory), so readers only ever see whole objects.
 */
export function createFileStore(opts: { root: string }): ObjectStore {
  const root = resolve(opts.root);
  const pathOf = (op: string, key: string): string => {
    const problem = keyProblem(key);
    if (problem !== null) throw new StorageError(DRIVER, op, key, `invalid key: ${problem}`);
    return join(root, ...key.split('/'));
  };

  return {
    driver: DRIVER,

    async get(key, range) {
      const path = pathOf('GET', key);
      let fh: FileHandle;
      try {
        fh = await open(path, 'r');
      } catch (err) {
        if (isAbsent(err)) return null;
        throw new StorageError(DRIVER, 'GET', key, err);
      }
      // Size and etag come from the descriptor we read from, so they describe exactly the bytes the body yields even
      // if the key is overwritten meanwhile. The body owns the descriptor: consuming or abandoning it closes it.
      try {
        const st = await fh.stat({ bigint: true });
        if (!st.isFile()) {
          await fh.close();
          return null;
        }
        const size = Number(st.size);
        const span = byteSpan(range, size);
        if (span === null) throw new Error(`invalid range ${JSON.stringify(range)}`);
        const meta = { key, size, etag: etagOf(st) };
        if (span.start === span.end) {
          await fh.close();
          return { ...meta, body: empty() };
        }
        const stream = fh.createReadStream({ start: span.start, end: span.end - 1, highWaterMark: CHUNK });
        return { ...meta, body: readBody(key, stream) };
      } catch (err) {
        await fh.close().catch(() => undefined);
        throw new StorageError(DRIVER, 'GET', key, err);
      }
    },

    async head(key) {
      const path = pathOf('HEAD', key);
      try {
        const st = await stat(path, { bigint: true });
        return st.isFile() ? { key, size: Number(st.size), etag: etagOf(st) } : null;
      } catch (err) {
        if (isAbsent(err)) return null;
        throw new StorageError(DRIVER, 'HEAD', key, err);
      }
    },

    async put(key, body, options) {
      const path = pathOf('PUT', key);
      const dir = dirname(path);
      const tmp = join(dir, TMP_PREFIX + randomBytes(8).toString('hex'));
      let fh: FileHandle | undefined;
      let tmpExists = false;
      try {
        const made = await mkdir(dir, { recursive: true });
        fh = await open(tmp, 'wx');
        tmpExists = true;
        await writeBody(fh, body);
        await fh.sync();
        const st = await fh.stat({ bigint: true });
        await fh.close();
        fh = undefined;
        if (options?.ifNoneMatch === '*') {
          try {
            await link(tmp, path);
          } catch (err) {
            if (codeOf(err) === 'EEXIST') throw new PreconditionFailedError(DRIVER, key);
            throw err;
          }
          await unlink(tmp);
        } else {
          await rename(tmp, path);
        }
        tmpExists = false;
        await syncDirs(dir, made);
        return { key, size: Number(st.size), etag: etagOf(st) };
      } catch (err) {
        // Cleanup never masks the original error.
        await fh?.close().catch(() => undefined);
        if (tmpExists) await unlink(tmp).catch(() => undefined);
        if (err instanceof BodyFailure) throw err.original;
        throw err instanceof PxeError ? err : new StorageError(DRIVER, 'PUT', key, err);
      }
    },

    async delete(key) {
      const path = pathOf('DELETE', key);
      // Empty parent directories stay: removing them would race with a concurrent put's mkdir + open.
      try {
        await unlink(path);
      } catch (err) {
        if (!isAbsent(err)) throw new StorageError(DRIVER, 'DELETE', key, err);
      }
    },

    async list(prefix, options = {}) {
      const problem = keyProblem(prefix, 'prefix');
      if (problem !== null) throw new StorageError(DRIVER, 'LIST', prefix, `invalid prefix: ${problem}`);
      const limit = Math.max(1, Math.floor(options.limit ?? DEFAULT_LIMIT));
      const cut = prefix.lastIndexOf('/') + 1;
      const dirKey = prefix.slice(0, cut);
      const keys: string[] = [];
      try {
        for await (const key of walk(join(root, dirKey), dirKey, prefix.slice(cut), options.cursor)) {
          // One key past the page proves more follow, so the last page never comes back empty.
          if (keys.length === limit) return { keys, cursor: keys[limit - 1] as string };
          keys.push(key);
        }
      } catch (err) {
        throw new StorageError(DRIVER, 'LIST', prefix, err);
      }
      return { keys };
    },
  };
}

/** Removes `.tmp-*` files under `root` last modified more than `olderThanMs` ago (writers crashed mid-put). */
export async function cleanStaleTemps(root: string, olderThanMs: number): Promise<number> {
  const cutoff = Date.now() - olderThanMs;
  let removed = 0;
  const sweep = async (dir: string): Promise<void> => {
    for (const entry of await entries(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        await sweep(path);
      } else if (entry.isFile() && entry.name.startsWith(TMP_PREFIX)) {
        try {
          // mtime, not ctime: an in-flight put keeps touching it, so only abandoned temps look old.
          if ((await stat(path)).mtimeMs >= cutoff) continue;
          await unlink(path);
          removed++;
        } catch (err) {
          if (!isAbsent(err)) throw new StorageError(DRIVER, 'CLEAN', path, err);
        }
      }
    }
  };
  await sweep(resolve(root));
  return removed;
}

/** Marks an error thrown by the caller's body so `put` rethrows it unchanged: the caller knows what it means. */
class BodyFailure extends Error {
  constructor(readonly original: unknown) {
    super('body failed');
  }
}

async function writeBody(fh: FileHandle, body: PutBody): Promise<void> {
  if (typeof body === 'string') return writeFully(fh, Buffer.from(body));
  if (body instanceof Uint8Array) return writeFully(fh, body);
  // Small chunks (network reads are often 16-64 KiB) are copied into one 1 MiB buffer so the file sees few large
  // writes; chunks that are already large go straight through. Each write is awaited: that is the backpressure.
  let buf: Buffer | undefined;
  let used = 0;
  const it = body[Symbol.asyncIterator]();
  for (;;) {
    let step: IteratorResult<Uint8Array>;
    try {
      step = await it.next();
    } catch (err) {
      throw new BodyFailure(err);
    }
    if (step.done) break;
    const chunk = step.value;
    try {
      if (used === 0 && chunk.byteLength >= CHUNK) {
        await writeFully(fh, chunk);
        continue;
      }
      buf ??= Buffer.allocUnsafe(CHUNK);
      for (let at = 0; at < chunk.byteLength;) {
        const n = Math.min(CHUNK - used, chunk.byteLength - at);
        buf.set(chunk.subarray(at, at + n), used);
        used += n;
        at += n;
        if (used === CHUNK) {
          await writeFully(fh, buf);
          used = 0;
        }
      }
    } catch (err) {
      // Let the producer release what it holds (sockets, file handles) before the error propagates.
      await it.return?.().catch(() => undefined);
      throw err;
    }
  }
  if (buf && used > 0) await writeFully(fh, buf.subarray(0, used));
}

async function writeFully(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.byteLength;) {
    const { bytesWritten } = await fh.write(bytes, at, bytes.byteLength - at);
    at += bytesWritten;
  }
}

/**
 * fsync the directory holding the new entry, and, when mkdir created directories, each parent up to the one that
 * already existed: otherwise a crash could lose the entry even though the file's bytes were synced.
 */
async function syncDirs(dir: string, made: string | undefined): Promise<void> {
  const last = made === undefined ? dir : dirname(made);
  for (let d = dir; ; d = dirname(d)) {
    const handle = await open(d, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (d === last || d === dirname(d)) return;
  }
}

/**
 * Keys under `dir` whose first segment starts with `namePrefix`, in lexicographic key order, after `cursor`.
 * Directories sort as `name/`, which places every key below them exactly where a flat sort of full keys would.
 */
async function* walk(
  dir: string,
  keyPrefix: string,
  namePrefix: string,
  cursor: string | undefined,
): AsyncGenerator<string> {
  const items: { key: string; name: string; isDir: boolean }[] = [];
  for (const e of await entries(dir)) {
    if (!e.name.startsWith(namePrefix) || e.name.startsWith(TMP_PREFIX)) continue;
    if (e.isFile()) items.push({ key: keyPrefix + e.name, name: e.name, isDir: false });
    else if (e.isDirectory()) items.push({ key: `${keyPrefix}${e.name}/`, name: e.name, isDir: true });
  }
  items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const item of items) {
    if (!item.isDir) {
      if (cursor === undefined || item.key > cursor) yield item.key;
    } else if (cursor === undefined || cursor < item.key || cursor.startsWith(item.key)) {
      // Subtrees wholly before the cursor are skipped, so paging through a large tree does not re-walk it.
      yield* walk(join(dir, item.name), item.key, '', cursor);
    }
  }
}

async function entries(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isAbsent(err)) return [];
    throw err;
  }
}

/**
 * A hand-written iterator rather than a generator: `return()` on a generator that never started runs none of its
 * code, so a body abandoned before its first read (a response cancelled early) would keep its descriptor open.
 */
function readBody(key: string, stream: ReadStream): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]() {
      const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      return {
        async next() {
          try {
            return await it.next();
          } catch (err) {
            throw new StorageError(DRIVER, 'GET', key, err);
          }
        },
        async return() {
          stream.destroy();
          return { done: true, value: undefined };
        },
      };
    },
  };
}

async function* empty(): AsyncIterable<Uint8Array> {}

/** Changes whenever the file is replaced (new inode) or rewritten in place (size, nanosecond mtime). */
function etagOf(st: BigIntStats): string {
  return `"${st.size.toString(16)}-${st.mtimeNs.toString(16)}-${st.ino.toString(16)}"`;
}

function codeOf(err: unknown): unknown {
  return (err as { code?: unknown } | null)?.code;
}

/** ENOTDIR / EISDIR: a path component is a file, or the key names a directory; either way no object is there. */
function isAbsent(err: unknown): boolean {
  const code = codeOf(err);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}
