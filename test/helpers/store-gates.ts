/**
 * Fault injection at the store boundary, for interleavings a real server cannot be made to produce on demand (a
 * reader caught between two store reads while a job finishes). The wrapped store is the real file store; a gate
 * only pauses one matching call until the test releases it.
 */
import type { ObjectStore } from '../../src/storage/object-store.js';

export type StoreOp = 'get' | 'head' | 'put' | 'delete' | 'list';

export interface Gate {
  /** Settles when a matching call arrived and is being held. */
  readonly reached: Promise<void>;
  release(): void;
}

export interface GatedStore {
  readonly store: ObjectStore;
  /** Holds the next call for which `match` is true (once), until `release()`. */
  hold(match: (op: StoreOp, key: string) => boolean): Gate;
}

export function gatedStore(inner: ObjectStore): GatedStore {
  const gates: { match: (op: StoreOp, key: string) => boolean; arrive: () => void; released: Promise<void> }[] = [];
  async function pass(op: StoreOp, key: string): Promise<void> {
    const i = gates.findIndex((g) => g.match(op, key));
    if (i === -1) return;
    const [gate] = gates.splice(i, 1);
    gate?.arrive();
    await gate?.released;
  }
  const store: ObjectStore = {
    driver: inner.driver,
    get: async (key, range) => (await pass('get', key), inner.get(key, range)),
    head: async (key) => (await pass('head', key), inner.head(key)),
    put: async (key, body, options) => (await pass('put', key), inner.put(key, body, options)),
    delete: async (key) => (await pass('delete', key), inner.delete(key)),
    list: async (prefix, options) => (await pass('list', prefix), inner.list(prefix, options)),
  };
  return {
    store,
    hold(match) {
      let arrive!: () => void;
      let release!: () => void;
      const reached = new Promise<void>((r) => (arrive = r));
      const released = new Promise<void>((r) => (release = r));
      gates.push({ match, arrive, released });
      return { reached, release };
    },
  };
}
