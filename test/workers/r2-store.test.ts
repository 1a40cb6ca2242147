import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { PreconditionFailedError, StorageError } from '../../src/core/errors.js';
import { readAll } from '../../src/storage/object-store.js';
import { createR2Store, type R2BucketLike } from '../../src/storage/r2-store.js';

const MiB = 1024 * 1024;

/** The real binding, with the calls that reach it recorded (a wrapper, not a fake: every call goes to R2). */
function recording(bucket: R2Bucket) {
  const log = { puts: 0, uploads: [] as string[], parts: [] as number[], aborts: 0, completes: 0 };
  const wrapped: R2BucketLike = {
    head: (key) => bucket.head(key),
    get: (key, options) => bucket.get(key, options),
    put: (key, value, options) => {
      log.puts++;
      return bucket.put(key, value, options);
    },
    delete: (key) => bucket.delete(key),
    list: (options) => bucket.list(options),
    async createMultipartUpload(key) {
      const upload = await bucket.createMultipartUpload(key);
      log.uploads.push(upload.uploadId);
      return {
        uploadPart: (n, value) => {
          log.parts.push(value.byteLength);
          return upload.uploadPart(n, value);
        },
        complete: (parts) => {
          log.completes++;
          return upload.complete(parts);
        },
        abort: () => {
          log.aborts++;
          return upload.abort();
        },
      };
    },
  };
  return { bucket: wrapped, log };
}

/** `total` bytes of a repeating pattern in `chunk`-byte pieces, each a fresh array. */
async function* pattern(total: number, chunk: number): AsyncIterable<Uint8Array> {
  for (let at = 0; at < total; at += chunk) {
    const piece = new Uint8Array(Math.min(chunk, total - at));
    for (let i = 0; i < piece.byteLength; i++) piece[i] = (at + i) % 251;
    yield piece;
  }
}

async function* failingAfter(total: number, error: Error): AsyncIterable<Uint8Array> {
  yield* pattern(total, 1 * MiB);
  throw error;
}

function isPattern(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.byteLength; i++) if (bytes[i] !== i % 251) return false;
  return true;
}

let n = 0;
const freshKey = (what: string): string => `r2-test/${what}-${++n}-${crypto.randomUUID()}`;

describe('r2 store: known length (FixedLengthStream, one put)', () => {
  it('streams a body of the given length in a single put', async () => {
    const { bucket, log } = recording(env.BUCKET);
    const key = freshKey('known');
    const meta = await createR2Store(bucket).put(key, pattern(12 * MiB + 7, 64 * 1024), { length: 12 * MiB + 7 });
    expect(meta.size).toBe(12 * MiB + 7);
    expect(log).toMatchObject({ puts: 1, uploads: [] });
    const back = await readAll((await createR2Store(env.BUCKET).get(key))!.body);
    expect(back.byteLength).toBe(12 * MiB + 7);
    expect(isPattern(back)).toBe(true);
  });

  for (const [label, actual] of [
    ['shorter', 1000],
    ['longer', 3000],
  ] as const) {
    it(`fails a body ${label} than its length and leaves no object`, async () => {
      const store = createR2Store(env.BUCKET);
      const key = freshKey(label);
      const put = store.put(key, pattern(actual, 512), { length: 2000 });
      await expect(put).rejects.toBeInstanceOf(StorageError);
      await expect(put).rejects.toThrow(/length|expected/);
      expect(await store.head(key)).toBeNull();
    });
  }

  it('rethrows a body error unchanged, also after the last byte, and leaves no object', async () => {
    // FixedLengthStream must not end the put when the last byte goes through, only at close(): else this publishes.
    const store = createR2Store(env.BUCKET);
    const key = freshKey('late-throw');
    const boom = new Error('reset after the last byte');
    await expect(store.put(key, failingAfter(3 * MiB, boom), { length: 3 * MiB })).rejects.toBe(boom);
    expect(await store.head(key)).toBeNull();
  });

  it('create-only with a length: one conditional put; the loser gets PreconditionFailedError', async () => {
    const store = createR2Store(env.BUCKET);
    const key = freshKey('known-create');
    await store.put(key, pattern(1000, 100), { length: 1000, ifNoneMatch: '*' });
    await expect(store.put(key, pattern(10, 10), { length: 10, ifNoneMatch: '*' })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    expect((await store.head(key))?.size).toBe(1000);
  });
});

describe('r2 store: unknown length (multipart)', () => {
  it('uploads 23 MiB as 5 MiB parts and a 3 MiB last part, bytes intact', async () => {
    const { bucket, log } = recording(env.BUCKET);
    const store = createR2Store(bucket, { partSize: 5 * MiB });
    const key = freshKey('multipart');
    // Odd chunk sizes, so parts are cut inside chunks.
    const meta = await store.put(key, pattern(23 * MiB, 1_000_003));
    expect(meta.size).toBe(23 * MiB);
    expect(log.parts).toEqual([5 * MiB, 5 * MiB, 5 * MiB, 5 * MiB, 3 * MiB]);
    expect(log).toMatchObject({ puts: 0, completes: 1, aborts: 0 });
    expect(log.uploads).toHaveLength(1);
    const obj = await store.get(key);
    expect(obj).toMatchObject({ size: 23 * MiB, etag: meta.etag });
    const back = await readAll(obj!.body);
    expect(back.byteLength).toBe(23 * MiB);
    expect(isPattern(back)).toBe(true);
  });

  it('sends a known length above the single-put limit (5 GiB on R2) as multipart parts', async () => {
    const { bucket, log } = recording(env.BUCKET);
    const store = createR2Store(bucket, { partSize: 5 * MiB, maxSinglePut: 6 * MiB });
    const key = freshKey('over-single-put');
    const meta = await store.put(key, pattern(12 * MiB, 999_983), { length: 12 * MiB });
    expect(meta.size).toBe(12 * MiB);
    expect(log.parts).toEqual([5 * MiB, 5 * MiB, 2 * MiB]);
    expect(log).toMatchObject({ puts: 0, completes: 1 });
    expect(isPattern(await readAll((await store.get(key))!.body))).toBe(true);
  });

  it('puts a body that fits in one part with one plain put, exactly partSize included', async () => {
    const { bucket, log } = recording(env.BUCKET);
    const store = createR2Store(bucket, { partSize: 5 * MiB });
    await store.put(freshKey('one-part'), pattern(5 * MiB, 65536));
    expect(log).toMatchObject({ puts: 1, uploads: [], parts: [] });
  });

  it('aborts the upload when the body throws, rethrows its error, leaves no object', async () => {
    const { bucket, log } = recording(env.BUCKET);
    const store = createR2Store(bucket, { partSize: 5 * MiB });
    const key = freshKey('abort');
    const boom = new Error('upstream reset');
    await expect(store.put(key, failingAfter(12 * MiB, boom))).rejects.toBe(boom);
    expect(log.parts).toEqual([5 * MiB, 5 * MiB]);
    expect(log).toMatchObject({ aborts: 1, completes: 0 });
    expect(await store.head(key)).toBeNull();
    // R2 no longer knows the upload: it really was aborted, not just left to expire.
    const resumed = env.BUCKET.resumeMultipartUpload(key, log.uploads[0]!);
    await expect(resumed.uploadPart(3, new Uint8Array(10))).rejects.toThrow();
  });

  it('refuses create-only beyond one part (R2 multipart cannot be conditional) and leaves no object', async () => {
    const { bucket, log } = recording(env.BUCKET);
    const store = createR2Store(bucket, { partSize: 5 * MiB });
    const key = freshKey('create-big');
    await expect(store.put(key, pattern(6 * MiB, MiB), { ifNoneMatch: '*' })).rejects.toThrow(/known length/);
    expect(log.uploads).toEqual([]);
    expect(await store.head(key)).toBeNull();
  });

  it('rejects a part size under R2’s 5 MiB minimum', () => {
    expect(() => createR2Store(env.BUCKET, { partSize: 5 * MiB - 1 })).toThrow(StorageError);
  });
});

describe('r2 store: create-only races', () => {
  for (const [label, body] of [
    ['bytes', (i: number) => new TextEncoder().encode(`creator-${i}`)],
    ['streams', (i: number) => pattern(100 + i, 7)],
  ] as const) {
    it(`exactly one of 32 concurrent creators wins (${label})`, async () => {
      const store = createR2Store(env.BUCKET);
      const key = freshKey(`race-${label}`);
      const results = await Promise.allSettled(
        Array.from({ length: 32 }, (_, i) => store.put(key, body(i), { ifNoneMatch: '*' })),
      );
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(won).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(PreconditionFailedError);
      const meta = results[won[0]!] as PromiseFulfilledResult<{ etag: string }>;
      expect((await store.head(key))?.etag).toBe(meta.value.etag);
    });
  }
});
