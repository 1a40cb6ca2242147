import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IntegrityError, PreconditionFailedError, StorageError } from '../../src/core/errors.js';
import { listAll, readAll, type ByteRange, type ObjectStore } from '../../src/storage/object-store.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * `size` random bytes. Not node:crypto's randomBytes: in workerd (where the R2 run happens) it is built on
 * getRandomValues, which refuses more than 64 KiB at once.
 */
function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
  return bytes;
}

/** Yields each part on its own turn of the event loop, so concurrent puts really interleave. */
async function* slowly(...parts: string[]): AsyncIterable<Uint8Array> {
  for (const part of parts) {
    await tick();
    yield encoder.encode(part);
  }
}

async function* failingAfter(parts: Uint8Array[], error: unknown): AsyncIterable<Uint8Array> {
  for (const part of parts) {
    await tick();
    yield part;
  }
  throw error;
}

async function text(store: ObjectStore, key: string, range?: ByteRange): Promise<string | null> {
  const obj = await store.get(key, range);
  return obj === null ? null : decoder.decode(await readAll(obj.body));
}

async function collect(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of listAll(store, prefix)) keys.push(key);
  return keys;
}

/** One suite run against every driver (unstorage's pattern): a driver is correct when this passes unchanged. */
export function describeObjectStore(
  name: string,
  make: () => Promise<{ store: ObjectStore; cleanup: () => Promise<void> }>,
): void {
  describe(`ObjectStore conformance: ${name}`, () => {
    let store: ObjectStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await make());
    });
    afterEach(async () => {
      await cleanup();
    });

    it('round-trips bytes, string and async-iterable bodies', async () => {
      const bytes = new Uint8Array([0, 1, 2, 255]);
      const meta = await store.put('t/bytes', bytes);
      expect(meta).toMatchObject({ key: 't/bytes', size: 4 });
      const obj = await store.get('t/bytes');
      expect(obj).toMatchObject({ key: 't/bytes', size: 4, etag: meta.etag });
      expect(await readAll(obj!.body)).toEqual(bytes);

      await store.put('t/string', 'héllo');
      expect(await text(store, 't/string')).toBe('héllo');
      expect((await store.head('t/string'))?.size).toBe(6);

      await store.put('t/iter', slowly('ab', '', 'cd', 'e'));
      expect(await text(store, 't/iter')).toBe('abcde');

      await store.put('t/empty', '');
      expect(await text(store, 't/empty')).toBe('');
    });

    it('returns null for an absent key from get and head', async () => {
      expect(await store.get('absent/key')).toBeNull();
      expect(await store.head('absent/key')).toBeNull();
      await store.put('absent/other', 'x');
      expect(await store.get('absent')).toBeNull();
      expect(await store.head('absent')).toBeNull();
    });

    it('head reports what put returned, without reading the body', async () => {
      const meta = await store.put('h/obj', 'twelve bytes');
      expect(await store.head('h/obj')).toEqual(meta);
    });

    it('reads ranges; size is always the whole object', async () => {
      await store.put('r/obj', '0123456789');
      expect(await text(store, 'r/obj', { offset: 3 })).toBe('3456789');
      expect(await text(store, 'r/obj', { offset: 3, length: 4 })).toBe('3456');
      expect(await text(store, 'r/obj', { offset: 8, length: 100 })).toBe('89');
      expect(await text(store, 'r/obj', { offset: 0, length: 0 })).toBe('');
      expect(await text(store, 'r/obj', { offset: 10 })).toBe('');
      expect(await text(store, 'r/obj', { offset: 1000, length: 5 })).toBe('');
      const ranged = await store.get('r/obj', { offset: 3, length: 4 });
      expect(ranged?.size).toBe(10);
      expect(decoder.decode(await readAll(ranged!.body))).toBe('3456');
      await expect(store.get('r/obj', { offset: -1 })).rejects.toBeInstanceOf(StorageError);
    });

    it('overwrites an object and changes its etag', async () => {
      const first = await store.put('o/obj', 'first version');
      const second = await store.put('o/obj', 'second');
      expect(await text(store, 'o/obj')).toBe('second');
      expect(second.size).toBe(6);
      expect(second.etag).not.toBe(first.etag);
      expect((await store.head('o/obj'))?.etag).toBe(second.etag);
    });

    it('create-only: a second create fails and keeps the first bytes', async () => {
      await store.put('c/obj', 'winner', { ifNoneMatch: '*' });
      const lost = store.put('c/obj', 'loser', { ifNoneMatch: '*' });
      await expect(lost).rejects.toBeInstanceOf(PreconditionFailedError);
      await expect(lost).rejects.toMatchObject({ code: 'precondition-failed', key: 'c/obj' });
      expect(await text(store, 'c/obj')).toBe('winner');
    });

    it('create-only: exactly one of 16 concurrent creators wins', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 16 }, (_, i) => store.put('c/race', slowly(`creator-`, `${i}`), { ifNoneMatch: '*' })),
      );
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(won).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(PreconditionFailedError);
      }
      expect(await text(store, 'c/race')).toBe(`creator-${won[0]}`);
    });

    for (const [label, error] of [
      ['an Error', new Error('upstream reset')],
      ['a PxeError', new IntegrityError('body', 'sha256:aa', 'sha256:bb')],
    ] as const) {
      it(`rethrows ${label} from a body that fails midway and leaves no object`, async () => {
        const parts = [randomBytes(700_000), randomBytes(700_000)];
        await expect(store.put('f/obj', failingAfter(parts, error))).rejects.toBe(error);
        expect(await store.get('f/obj')).toBeNull();
        expect(await store.head('f/obj')).toBeNull();
        expect(await collect(store, '')).toEqual([]);
        // The key is still free for a create-only write.
        await store.put('f/obj', 'later', { ifNoneMatch: '*' });
        expect(await text(store, 'f/obj')).toBe('later');
      });
    }

    it('keeps the previous object when an overwrite fails midway', async () => {
      await store.put('f/keep', 'original');
      const boom = new Error('boom');
      await expect(store.put('f/keep', failingAfter([encoder.encode('partial')], boom))).rejects.toBe(boom);
      expect(await text(store, 'f/keep')).toBe('original');
    });

    it('lists keys under a prefix in lexicographic order, including mid-segment prefixes', async () => {
      const keys = ['x/a0', 'x/a/b', 'x/a-b', 'x/a.b', 'x/a/c/d', 'x/b', 'xy', 'y/a', 'heads/boot%2Fx.json'];
      keys.push('heads/boot%2Fxyz.json', 'heads/boot%2Fx/deep', 'heads/boot%2Fy.json', 'heads/bootz');
      for (const key of keys) await store.put(key, key);
      const sorted = [...keys].sort();
      expect((await store.list('')).keys).toEqual(sorted);
      expect((await store.list('x/')).keys).toEqual(['x/a-b', 'x/a.b', 'x/a/b', 'x/a/c/d', 'x/a0', 'x/b']);
      expect((await store.list('x')).keys).toEqual(['x/a-b', 'x/a.b', 'x/a/b', 'x/a/c/d', 'x/a0', 'x/b', 'xy']);
      expect((await store.list('x/a/')).keys).toEqual(['x/a/b', 'x/a/c/d']);
      expect((await store.list('heads/boot%2Fx')).keys).toEqual([
        'heads/boot%2Fx.json',
        'heads/boot%2Fx/deep',
        'heads/boot%2Fxyz.json',
      ]);
      expect((await store.list('nothing/here')).keys).toEqual([]);
      expect((await store.list('x/b')).keys).toEqual(['x/b']);
    });

    it('paginates with a cursor', async () => {
      const keys = ['p/a', 'p/b/c', 'p/b/d', 'p/e', 'p/f/g/h'];
      for (const key of [...keys].reverse()) await store.put(key, key);
      const first = await store.list('p/', { limit: 2 });
      expect(first.keys).toEqual(['p/a', 'p/b/c']);
      expect(first.cursor).toBeDefined();
      const second = await store.list('p/', { limit: 2, cursor: first.cursor! });
      expect(second.keys).toEqual(['p/b/d', 'p/e']);
      const third = await store.list('p/', { limit: 2, cursor: second.cursor! });
      expect(third).toEqual({ keys: ['p/f/g/h'] });
      expect((await store.list('p/', { cursor: 'p/b/c' })).keys).toEqual(['p/b/d', 'p/e', 'p/f/g/h']);
      expect(await collect(store, 'p/')).toEqual(keys);
    });

    it('deletes idempotently', async () => {
      await store.put('d/obj', 'x');
      await store.put('d/other', 'y');
      await store.delete('d/obj');
      expect(await store.get('d/obj')).toBeNull();
      await store.delete('d/obj');
      await store.delete('d/never/existed');
      expect((await store.list('d/')).keys).toEqual(['d/other']);
    });

    it('round-trips a 32 MiB object streamed in 64 KiB chunks', async () => {
      const hash = createHash('sha256');
      const chunk = 64 * 1024;
      async function* body(): AsyncIterable<Uint8Array> {
        for (let i = 0; i < 512; i++) {
          const part = randomBytes(chunk);
          hash.update(part);
          yield part;
        }
      }
      const meta = await store.put('big/obj', body());
      expect(meta.size).toBe(32 * 1024 * 1024);
      const obj = await store.get('big/obj');
      const readBack = createHash('sha256');
      let size = 0;
      for await (const part of obj!.body) {
        readBack.update(part);
        size += part.byteLength;
      }
      expect(size).toBe(meta.size);
      expect(readBack.digest('hex')).toBe(hash.digest('hex'));
    });

    it('stores keys containing % escapes verbatim', async () => {
      await store.put('heads/boot%2Fx.json', '{"v":1}');
      await store.put('heads/boot%252Fx.json', '{"v":2}');
      expect(await text(store, 'heads/boot%2Fx.json')).toBe('{"v":1}');
      expect(await text(store, 'heads/boot%252Fx.json')).toBe('{"v":2}');
      expect((await store.list('heads/boot%2')).keys).toEqual(['heads/boot%252Fx.json', 'heads/boot%2Fx.json']);
    });

    it('rejects keys no driver can store portably', async () => {
      for (const key of ['', '/abs', 'a//b', 'a/./b', '../x', 'a/..', 'a\\b', 'a\0b', 'a/.tmp-x']) {
        await expect(store.put(key, 'x'), JSON.stringify(key)).rejects.toBeInstanceOf(StorageError);
        await expect(store.get(key), JSON.stringify(key)).rejects.toBeInstanceOf(StorageError);
      }
      await expect(store.list('../')).rejects.toBeInstanceOf(StorageError);
      expect(await collect(store, '')).toEqual([]);
    });
  });
}
