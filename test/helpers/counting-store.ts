/**
 * Counts the operations that reach a store (the real file store in integration tests): how many GET/HEAD/PUT/DELETE/
 * LIST calls one request caused, and on which keys. Behaviour is unchanged.
 */
import type { ObjectStore } from '../../src/storage/object-store.js';

export type CountedOp = 'get' | 'head' | 'put' | 'delete' | 'list';

export interface CountingStore {
  readonly store: ObjectStore;
  /** Every call since the last reset, in order. */
  readonly calls: { op: CountedOp; key: string }[];
  reset(): void;
  count(...ops: CountedOp[]): number;
}

export function countingStore(inner: ObjectStore): CountingStore {
  const calls: { op: CountedOp; key: string }[] = [];
  const seen = (op: CountedOp, key: string) => void calls.push({ op, key });
  return {
    calls,
    reset: () => void calls.splice(0),
    count: (...ops) => calls.filter((c) => ops.length === 0 || ops.includes(c.op)).length,
    store: {
      driver: inner.driver,
      get: (key, range) => (seen('get', key), inner.get(key, range)),
      head: (key) => (seen('head', key), inner.head(key)),
      put: (key, body, options) => (seen('put', key), inner.put(key, body, options)),
      delete: (key) => (seen('delete', key), inner.delete(key)),
      list: (prefix, options) => (seen('list', prefix), inner.list(prefix, options)),
    },
  };
}
