import { describe, PreconditionFailedError, PxeError, StorageError } from '../core/errors.js';
import {
  byteSpan,
  concatBytes,
  keyProblem,
  type ObjectBody,
  type ObjectMeta,
  type ObjectStore,
  type PutOptions,
} from './object-store.js';
import { createPartCutter } from './part-cutter.js';
import type { R2BucketLike, R2MultipartUploadLike, R2ObjectLike, R2UploadedPartLike } from './r2-binding.js';

export type { R2BucketLike } from './r2-binding.js';

/** Workers' TransformStream that checks the byte count; declared, not imported (no workers-types in src/). */
declare const FixedLengthStream: new (length: number) => TransformStream<Uint8Array, Uint8Array>;

const DRIVER = 'r2';
const MiB = 1024 * 1024;
/** R2's smallest part (except the last one). */
const MIN_PART_SIZE = 5 * MiB;
/** R2's key limit: 1024 bytes of UTF-8. */
const R2_MAX_KEY_BYTES = 1024;
const MAX_KEYS = 1000;
/** A streamed body up to this size is gathered in a list, not copied into a part buffer. */
const SMALL_BODY = 64 * 1024;
/** Create-only in R2's binding form; a `Headers` with `If-None-Match: *` works too (checked in local workerd). */
const CREATE_ONLY = { etagDoesNotMatch: '*' } as const;

/** R2's largest single put: 5 GiB less 5 MiB. A larger body of known length goes multipart too. */
const MAX_SINGLE_PUT = 5 * 1024 * MiB - 5 * MiB;

export interface R2StoreOptions {
  /** Multipart part size for streamed bodies of unknown length (default 8 MiB, minimum 5 MiB). */
  readonly partSize?: number;
  /** Largest body of known length sent as one put (default R2's limit, 5 GiB less 5 MiB; tests lower it). */
  readonly maxSinglePut?: number;
}

/**
 * ObjectStore on a Cloudflare R2 bucket binding. Writes are whole-object by construction: a put or a completed
 * multipart upload publishes all bytes at once, and a failed streamed write aborts its upload. Create-only is
 * `onlyIf: {etagDoesNotMatch: '*'}` on a single put, which R2 applies atomically (put answers `null` when it loses).
 */
export function createR2Store(bucket: R2BucketLike, opts: R2StoreOptions = {}): ObjectStore {
  const partSize = opts.partSize ?? 8 * MiB;
  const maxSinglePut = opts.maxSinglePut ?? MAX_SINGLE_PUT;
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE)
    throw new StorageError(DRIVER, 'OPEN', '', `partSize must be an integer >= ${MIN_PART_SIZE}`);

  const check = (op: string, key: string, kind: 'key' | 'prefix' = 'key'): void => {
    const problem = keyProblem(key, kind);
    if (problem !== null) throw new StorageError(DRIVER, op, key, `invalid ${kind}: ${problem}`);
  };
  const meta = (key: string, o: R2ObjectLike): ObjectMeta => ({ key, size: o.size, etag: o.httpEtag });

  /** One `put` call; `value` must have a known length (bytes, or a FixedLengthStream's readable side). */
  const putOnce = async (
    key: string,
    value: Uint8Array | ReadableStream<Uint8Array>,
    options?: PutOptions,
  ): Promise<ObjectMeta> => {
    const createOnly = options?.ifNoneMatch === '*';
    let out: R2ObjectLike | null;
    try {
      out = await bucket.put(key, value, createOnly ? { onlyIf: CREATE_ONLY } : undefined);
    } catch (err) {
      throw failure('PUT', key, err);
    }
    if (out === null) throw new PreconditionFailedError(DRIVER, key);
    return meta(key, out);
  };

  /**
   * A body of known length streamed through FixedLengthStream in one put, nothing buffered. A stream
   * that errors or closes short fails the put and leaves no object (checked in local workerd).
   */
  const putKnownLength = async (
    key: string,
    body: AsyncIterable<Uint8Array>,
    length: number,
    options: PutOptions | undefined,
  ): Promise<ObjectMeta> => {
    const { readable, writable } = new FixedLengthStream(length);
    const writer = writable.getWriter();
    const source = body[Symbol.asyncIterator]();
    let bodyError: { error: unknown } | undefined;
    const pump = async (): Promise<void> => {
      let size = 0;
      for (;;) {
        let step: IteratorResult<Uint8Array>;
        try {
          step = await source.next();
          size += step.done ? 0 : step.value.byteLength;
          if (size > length) throw new StorageError(DRIVER, 'PUT', key, `body longer than its length ${length}`);
          if (step.done && size < length)
            throw new StorageError(DRIVER, 'PUT', key, `body of ${size} bytes, expected ${length}`);
        } catch (error) {
          bodyError = { error };
          // Errors the readable side, so the put fails instead of waiting for bytes that never come.
          await writer.abort(error).catch(() => undefined);
          return;
        }
        // The readable side ends only at close(), not when `length` bytes went through (checked in local workerd):
        // a body that throws after its last byte aborts the put instead of publishing.
        if (step.done) return writer.close();
        await writer.write(step.value);
      }
    };
    // A write fails only once the put has failed: stop reading the body then.
    void pump().catch(() => void source.return?.().catch(() => undefined));
    try {
      return await putOnce(key, readable, options);
    } catch (err) {
      // Set before the abort that failed the put. Otherwise the put failed on its own: the pump, maybe stuck in a
      // slow read, is not awaited, and its next write fails on the aborted writer.
      if (bodyError !== undefined) throw bodyError.error;
      void writer.abort(err).catch(() => undefined);
      throw err;
    }
  };

  /**
   * A body of unknown length. R2's put needs a known length, so one part is buffered: a body that ends within it is
   * one plain put, a longer one a multipart upload of `partSize` parts stored one at a time (one buffer in memory).
   * Create-only is refused beyond one part: an R2 multipart upload cannot be conditional, and a HEAD before completing
   * would race with other creators. Create-only writes are small records (JSON); large bodies come with a `length`.
   */
  const putUnknownLength = async (
    key: string,
    body: AsyncIterable<Uint8Array>,
    options: PutOptions | undefined,
  ): Promise<ObjectMeta> => {
    const source = body[Symbol.asyncIterator]();
    let buffer: Uint8Array | undefined;
    let upload: R2MultipartUploadLike | undefined;
    const parts: R2UploadedPartLike[] = [];
    const store = async (part: Uint8Array, partNumber: number): Promise<void> => {
      if (options?.ifNoneMatch === '*')
        throw new StorageError(DRIVER, 'PUT', key, `create-only needs a known length above ${partSize} bytes`);
      upload ??= await bucket.createMultipartUpload(key);
      parts.push(await upload.uploadPart(partNumber, part));
    };
    const cutter = createPartCutter({
      partSize,
      // One buffer, reused: each part is stored before the next one is filled.
      nextBuffer: async () => (buffer ??= new Uint8Array(partSize)),
      emit: store,
      partSizeOption: 'partSize',
    });
    // A small body is gathered as it comes and never allocates the part buffer: 16 concurrent tiny puts must not
    // take 16 part buffers (128 MiB at 8 MiB parts, a Worker's whole memory).
    const small: Uint8Array[] = [];
    let smallSize: number | undefined = 0;
    let bodyError: { error: unknown } | undefined;
    try {
      for (;;) {
        const step = await source.next().catch((error: unknown) => {
          bodyError = { error };
          throw error;
        });
        if (step.done) break;
        if (smallSize !== undefined && smallSize + step.value.byteLength <= SMALL_BODY) {
          small.push(step.value);
          smallSize += step.value.byteLength;
          continue;
        }
        if (smallSize !== undefined)
          for (let c = small.shift(); c !== undefined; c = small.shift()) await cutter.take(c);
        smallSize = undefined;
        await cutter.take(step.value);
      }
      if (smallSize !== undefined) return await putOnce(key, concatBytes(small, smallSize), options);
      const { last, emitted, size } = cutter.rest();
      if (emitted === 0) return await putOnce(key, last, options);
      await store(last, emitted + 1);
      const out = await (upload as R2MultipartUploadLike).complete(parts);
      return { key, size, etag: out.httpEtag };
    } catch (caught) {
      if (bodyError === undefined) void source.return?.().catch(() => undefined);
      const abortProblem =
        upload === undefined
          ? null
          : await upload.abort().then(
              () => null,
              (err: unknown) => err,
            );
      // The body's own error is rethrown as it is, even when the abort failed too (the upload then expires).
      if (bodyError !== undefined) throw bodyError.error;
      if (caught instanceof PxeError && abortProblem === null) throw caught;
      const cause =
        abortProblem === null
          ? caught
          : new Error(`${describe(caught)}; abort failed: ${describe(abortProblem)}`, { cause: caught });
      throw failure('PUT', key, cause);
    }
  };

  return {
    driver: DRIVER,
    maxKeyBytes: R2_MAX_KEY_BYTES,

    async get(key, range) {
      check('GET', key);
      const span = byteSpan(range, Number.MAX_SAFE_INTEGER);
      if (span === null) throw new StorageError(DRIVER, 'GET', key, `invalid range ${JSON.stringify(range)}`);
      const length = range?.length;
      const whole = span.start === 0 && length === undefined;
      const emptyRange = async (): Promise<ObjectBody | null> => {
        const head = await bucket.head(key);
        return head === null ? null : { ...meta(key, head), body: empty() };
      };
      try {
        if (length === 0) return await emptyRange();
        const out = await bucket.get(
          key,
          whole ? undefined : { range: { offset: span.start, ...(length !== undefined && { length }) } },
        );
        if (out === null) return null;
        return { ...meta(key, out), body: iterate(key, out.body) };
      } catch (err) {
        // A range starting at or past the end (any range of an empty object too): the contract says empty.
        try {
          if (isUnsatisfiable(err)) return await emptyRange();
        } catch (headErr) {
          throw failure('GET', key, headErr);
        }
        throw failure('GET', key, err);
      }
    },

    async head(key) {
      check('HEAD', key);
      try {
        const out = await bucket.head(key);
        return out === null ? null : meta(key, out);
      } catch (err) {
        throw failure('HEAD', key, err);
      }
    },

    async put(key, body, options) {
      check('PUT', key);
      if (typeof body === 'string') return putOnce(key, new TextEncoder().encode(body), options);
      if (body instanceof Uint8Array) return putOnce(key, body, options);
      const length = options?.length;
      // A DVD-sized ISO may exceed one put: it goes multipart like a body of unknown length (the caller counts it).
      if (length === undefined || length > maxSinglePut) return putUnknownLength(key, body, options);
      if (!Number.isSafeInteger(length) || length < 0)
        throw new StorageError(DRIVER, 'PUT', key, `invalid length ${length}`);
      return putKnownLength(key, body, length, options);
    },

    async delete(key) {
      check('DELETE', key);
      try {
        await bucket.delete(key);
      } catch (err) {
        throw failure('DELETE', key, err);
      }
    },

    async list(prefix, options = {}) {
      check('LIST', prefix, 'prefix');
      // The cursor is the last key returned (startAfter), like every other driver: any key is a valid cursor.
      const limit = Math.min(MAX_KEYS, Math.max(1, Math.floor(options.limit ?? MAX_KEYS)));
      try {
        const out = await bucket.list({
          prefix,
          limit,
          ...(options.cursor !== undefined && { startAfter: options.cursor }),
        });
        const keys = out.objects.map((o) => o.key);
        const last = keys[keys.length - 1];
        return out.truncated && last !== undefined ? { keys, cursor: last } : { keys };
      } catch (err) {
        throw failure('LIST', prefix, err);
      }
    },
  };
}

/** The binding's body as the contract's iterable; ending the iteration early cancels the stream. */
function iterate(key: string, stream: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]() {
      const reader = stream.getReader();
      return {
        next: async () => {
          try {
            const step = await reader.read();
            return step.done ? { done: true, value: undefined } : { done: false, value: step.value };
          } catch (err) {
            throw new StorageError(DRIVER, 'GET', key, err);
          }
        },
        return: async () => {
          await reader.cancel().catch(() => undefined);
          return { done: true, value: undefined };
        },
      };
    },
  };
}

async function* empty(): AsyncIterable<Uint8Array> {}

/** R2's "The requested range is not satisfiable (10039)". */
function isUnsatisfiable(err: unknown): boolean {
  return err instanceof Error && err.message.includes('(10039)');
}

function failure(op: string, key: string, err: unknown): PxeError {
  return err instanceof PxeError ? err : new StorageError(DRIVER, op, key, err);
}
