import { PreconditionFailedError, StorageError } from '../core/errors.js';
import { byteSpan, keyProblem, readAll, type ObjectMeta, type ObjectStore, type PutBody } from './object-store.js';

const DRIVER = 'memory';
const DEFAULT_LIMIT = 1000;

interface Entry {
  readonly bytes: Uint8Array;
  readonly etag: string;
}

/** In-process store for unit tests only: same contract as the file store, nothing survives the process. */
export function createMemoryStore(): ObjectStore {
  const objects = new Map<string, Entry>();
  let version = 0;

  const check = (op: string, key: string, kind: 'key' | 'prefix' = 'key'): void => {
    const problem = keyProblem(key, kind);
    if (problem !== null) throw new StorageError(DRIVER, op, key, `invalid key: ${problem}`);
  };
  const meta = (key: string, e: Entry): ObjectMeta => ({ key, size: e.bytes.byteLength, etag: e.etag });

  return {
    driver: DRIVER,

    async get(key, range) {
      check('GET', key);
      const entry = objects.get(key);
      if (!entry) return null;
      const span = byteSpan(range, entry.bytes.byteLength);
      if (span === null) throw new StorageError(DRIVER, 'GET', key, `invalid range ${JSON.stringify(range)}`);
      // A copy, so a consumer that mutates its chunks cannot change the stored object.
      const bytes = entry.bytes.slice(span.start, span.end);
      return { ...meta(key, entry), body: once(bytes) };
    },

    async head(key) {
      check('HEAD', key);
      const entry = objects.get(key);
      return entry ? meta(key, entry) : null;
    },

    async put(key, body, options) {
      check('PUT', key);
      // The whole body is read before anything is visible; a body that throws propagates unchanged.
      const bytes = await toBytes(body);
      // Test and set with no await in between: on the single JS thread that makes create-only atomic.
      if (options?.ifNoneMatch === '*' && objects.has(key)) throw new PreconditionFailedError(DRIVER, key);
      const entry: Entry = { bytes, etag: `"m${++version}"` };
      objects.set(key, entry);
      return meta(key, entry);
    },

    async delete(key) {
      check('DELETE', key);
      objects.delete(key);
    },

    async list(prefix, options = {}) {
      check('LIST', prefix, 'prefix');
      const limit = Math.max(1, Math.floor(options.limit ?? DEFAULT_LIMIT));
      const after = options.cursor;
      const matching = [...objects.keys()]
        .filter((k) => k.startsWith(prefix) && (after === undefined || k > after))
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      if (matching.length <= limit) return { keys: matching };
      const keys = matching.slice(0, limit);
      return { keys, cursor: keys[keys.length - 1] as string };
    },
  };
}

async function toBytes(body: PutBody): Promise<Uint8Array> {
  if (typeof body === 'string') return new TextEncoder().encode(body);
  // Copy caller-owned bytes: the caller may reuse its buffer after put returns.
  if (body instanceof Uint8Array) return body.slice();
  return readAll(body);
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  if (bytes.byteLength > 0) yield bytes;
}
