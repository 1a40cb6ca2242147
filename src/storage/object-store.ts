/**
 * The one storage interface every driver implements (unstorage's pattern): small, byte-oriented, absence is `null`.
 * Keys are `/`-separated relative paths made only by `core/object-keys.ts`.
 */

export interface ObjectMeta {
  readonly key: string;
  /** Bytes in the whole object, also on a ranged `get` (the range's length is what its body yields). */
  readonly size: number;
  /** Opaque change token (quoted or not, driver-specific); equal bytes written twice may differ. */
  readonly etag: string;
}

export interface ObjectBody extends ObjectMeta {
  /**
   * The requested bytes (the whole object, or the range asked for). Consumed once. Read it to the end or end the
   * iteration (`break`, `return()`): a file-backed body holds an open descriptor until then.
   */
  readonly body: AsyncIterable<Uint8Array>;
}

export interface ByteRange {
  readonly offset: number;
  /** Omitted: to the end. */
  readonly length?: number;
}

export interface PutOptions {
  /** Create-only: fail with PreconditionFailedError when the key exists. Atomic against concurrent creators. */
  readonly ifNoneMatch?: '*';
  /**
   * The body's exact byte length when the caller knows it (an upstream Content-Length): lets a driver stream it in
   * one request. A driver that uses it fails the put, leaving no object, when the body yields another total.
   */
  readonly length?: number;
}

export type PutBody = Uint8Array | string | AsyncIterable<Uint8Array>;

export interface ListPage {
  readonly keys: readonly string[];
  /** Present when more keys follow; pass back as `cursor`. */
  readonly cursor?: string;
}

export interface ObjectStore {
  readonly driver: string;
  /** Longest key the backend accepts, in bytes (S3: 1024 minus the store prefix); absent when paths are the limit. */
  readonly maxKeyBytes?: number;
  /** `null` when absent. A range past the end yields an empty body. */
  get(key: string, range?: ByteRange): Promise<ObjectBody | null>;
  head(key: string): Promise<ObjectMeta | null>;
  /**
   * Writes the whole object or nothing: readers never see a partial object, and a body that throws leaves no object
   * behind (the error is rethrown).
   */
  put(key: string, body: PutBody, options?: PutOptions): Promise<ObjectMeta>;
  /** Idempotent: deleting an absent key succeeds. */
  delete(key: string): Promise<void>;
  /** Keys under `prefix`, in lexicographic order, at most `limit` per page. */
  list(prefix: string, options?: { cursor?: string; limit?: number }): Promise<ListPage>;
}

/**
 * Why `key` is not a portable object key, or `null` when it is. Every driver applies the same rules so a key that
 * passes against the memory store in unit tests also works on disk: no empty, `.` or `..` segment and no leading `/`
 * (nothing may resolve outside a file store's root), no backslash or NUL (path separators / terminators on some systems),
 * no segment starting with `.tmp-` (reserved for drivers' in-flight files). A `prefix` may end mid-segment and may be
 * empty: its last piece only filters names.
 */
export function keyProblem(key: string, kind: 'key' | 'prefix' = 'key'): string | null {
  if (kind === 'key' && key === '') return 'empty key';
  if (key.startsWith('/')) return 'leading /';
  if (key.includes('\\')) return 'backslash';
  if (key.includes('\0')) return 'NUL byte';
  const segments = key.split('/');
  if (kind === 'prefix') segments.pop();
  for (const s of segments) {
    if (s === '') return 'empty segment';
    if (s === '.' || s === '..') return `'${s}' segment`;
    if (s.startsWith('.tmp-')) return 'reserved .tmp- segment';
  }
  return null;
}

/**
 * The half-open span `[start, end)` that `range` selects in an object of `size` bytes, clamped to the object (a range
 * past the end selects nothing), or `null` when the range is malformed (negative or fractional numbers).
 */
export function byteSpan(range: ByteRange | undefined, size: number): { start: number; end: number } | null {
  const offset = range?.offset ?? 0;
  const length = range?.length;
  const valid = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;
  if (!valid(offset) || (length !== undefined && !valid(length))) return null;
  const start = Math.min(offset, size);
  return { start, end: length === undefined ? size : Math.min(size, start + length) };
}

export async function readAll(body: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    parts.push(chunk);
    size += chunk.byteLength;
  }
  // Always a copy: callers may keep it while the source reuses its buffers.
  return concatBytes(parts, size, true);
}

/** `parts` joined into one array of `size` bytes (the single part itself when there is only one, unless `copy`). */
export function concatBytes(parts: readonly Uint8Array[], size: number, copy = false): Uint8Array {
  if (parts.length === 1 && !copy) return parts[0] as Uint8Array;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

export async function getJson<T>(store: ObjectStore, key: string): Promise<T | null> {
  const obj = await store.get(key);
  if (!obj) return null;
  return JSON.parse(new TextDecoder().decode(await readAll(obj.body))) as T;
}

export async function putJson(store: ObjectStore, key: string, value: unknown, options?: PutOptions): Promise<void> {
  await store.put(key, JSON.stringify(value), options);
}

export async function* listAll(store: ObjectStore, prefix: string): AsyncIterable<string> {
  let cursor: string | undefined;
  do {
    const page = await store.list(prefix, cursor === undefined ? {} : { cursor });
    yield* page.keys;
    cursor = page.cursor;
  } while (cursor !== undefined);
}
