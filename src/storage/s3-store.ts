import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { PreconditionFailedError, PxeError, StorageError } from '../core/errors.js';
import {
  byteSpan,
  concatBytes,
  keyProblem,
  readAll,
  type ObjectMeta,
  type ObjectStore,
  type PutOptions,
} from './object-store.js';
import { createS3ClientFromEnv, isAbsent, nameOf, statusOf, summary } from './s3-client.js';
import { MultipartFailure, uploadMultipart } from './s3-multipart.js';

const DRIVER = 's3';
const MiB = 1024 * 1024;
/** S3's smallest part (except the last one). */
const MIN_PART_SIZE = 5 * MiB;
/** S3's key limit (AWS, R2, Ceph RGW): 1024 bytes of UTF-8, the store prefix included. */
const S3_MAX_KEY_BYTES = 1024;
const MAX_KEYS = 1000;
/** Attempts of a create-only PutObject that got 409 ConditionalRequestConflict or a 5xx (beyond the SDK's own). */
const CONDITIONAL_ATTEMPTS = 4;
const ABORT_ATTEMPTS = 3;
const ABORT_DEADLINE_MS = 120_000;

export interface S3StoreOptions {
  readonly bucket: string;
  /** Prepended to every key: `''` or a path ending with `/`. */
  readonly prefix: string;
  /** Default: `createS3ClientFromEnv(process.env)`. */
  readonly client?: S3Client;
  /** Multipart part size for streamed bodies (default and minimum 5 MiB); smaller bodies go in one PutObject. */
  readonly partSizeBytes?: number;
  /** Parts in flight at once; a streamed put holds at most (queueSize + 1) part buffers. Default 3. */
  readonly queueSize?: number;
  /**
   * Longest time spent aborting a failed multipart upload, all attempts included (default 2 min). Each request is
   * bounded by the client's timeouts already; this bounds retried aborts against a stalled endpoint as a whole.
   */
  readonly abortDeadlineMs?: number;
}

/**
 * ObjectStore on S3 and S3-compatible engines (tested against Ceph RGW). Writes are whole-object by construction:
 * a PutObject or a CompleteMultipartUpload publishes all bytes at once, and a failed streamed write aborts its
 * multipart upload. Create-only is `If-None-Match: *`, atomic on PutObject; on a multipart upload it is sent with
 * CompleteMultipartUpload, which AWS honours but Ceph RGW 16 ignores (see `putStream`).
 */
export function createS3Store(opts: S3StoreOptions): ObjectStore {
  const client = opts.client ?? createS3ClientFromEnv(process.env);
  const Bucket = opts.bucket;
  const prefix = opts.prefix;
  const partSize = opts.partSizeBytes ?? 5 * MiB;
  const queueSize = opts.queueSize ?? 3;
  const abortDeadlineMs = opts.abortDeadlineMs ?? ABORT_DEADLINE_MS;
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE)
    throw new StorageError(DRIVER, 'OPEN', prefix, `partSizeBytes must be an integer >= ${MIN_PART_SIZE}`);
  if (!Number.isSafeInteger(queueSize) || queueSize < 1)
    throw new StorageError(DRIVER, 'OPEN', prefix, 'queueSize must be an integer >= 1');
  if (!(abortDeadlineMs > 0)) throw new StorageError(DRIVER, 'OPEN', prefix, 'abortDeadlineMs must be > 0');
  if (prefix !== '' && (!prefix.endsWith('/') || keyProblem(prefix, 'prefix') !== null))
    throw new StorageError(DRIVER, 'OPEN', prefix, "prefix must be '' or a valid key path ending with '/'");

  const check = (op: string, key: string, kind: 'key' | 'prefix' = 'key'): string => {
    const problem = keyProblem(key, kind);
    if (problem !== null) throw new StorageError(DRIVER, op, key, `invalid ${kind}: ${problem}`);
    return prefix + key;
  };

  const head = async (key: string): Promise<ObjectMeta | null> => {
    const Key = check('HEAD', key);
    try {
      const out = await client.send(new HeadObjectCommand({ Bucket, Key }));
      return { key, size: out.ContentLength ?? 0, etag: out.ETag ?? '' };
    } catch (err) {
      if (isAbsent(err)) return null;
      throw failure('HEAD', key, err);
    }
  };

  /** The meta of what was just written; RGW answers CompleteMultipartUpload with an empty ETag, HEAD has it. */
  const written = async (key: string, size: number, etag: string | undefined): Promise<ObjectMeta> => {
    if (etag !== undefined && etag !== '' && etag !== '""') return { key, size, etag };
    const meta = await head(key);
    if (meta === null) throw new StorageError(DRIVER, 'PUT', key, 'object absent right after it was written');
    return meta;
  };

  const putBytes = async (key: string, bytes: Uint8Array, options: PutOptions | undefined): Promise<ObjectMeta> => {
    const input = { Bucket, Key: prefix + key, Body: bytes, ContentLength: bytes.byteLength };
    if (options?.ifNoneMatch !== '*') {
      try {
        return await written(key, bytes.byteLength, (await client.send(new PutObjectCommand(input))).ETag);
      } catch (err) {
        throw failure('PUT', key, err);
      }
    }
    // Ceph RGW once answered a losing concurrent creator with 500 instead of 412; S3 documents 409
    // ConditionalRequestConflict for racing conditional writes: both are retried. An attempt that failed that way may
    // still have written (the SDK retries 5xx too), so a later 412 over our own bytes is our win, not a loss.
    let ambiguous = false;
    for (let attempt = 1; ; attempt++) {
      try {
        const out = await client.send(new PutObjectCommand({ ...input, IfNoneMatch: '*' }));
        return await written(key, bytes.byteLength, out.ETag);
      } catch (err) {
        const status = statusOf(err);
        ambiguous ||= ((err as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1) > 1;
        if (status === 412 || nameOf(err) === 'PreconditionFailed') {
          const mine = ambiguous ? await holds(key, bytes) : null;
          if (mine !== null) return mine;
          throw new PreconditionFailedError(DRIVER, key);
        }
        if ((status === 409 || (status !== undefined && status >= 500)) && attempt < CONDITIONAL_ATTEMPTS) {
          ambiguous = true;
          await sleep(50 * 2 ** attempt * (0.5 + Math.random()));
          continue;
        }
        throw failure('PUT', key, err);
      }
    }
  };

  /** The meta of `key` when it holds exactly `bytes` (a single-part ETag is the MD5 of the bytes), else null. */
  const holds = async (key: string, bytes: Uint8Array): Promise<ObjectMeta | null> => {
    const meta = await head(key);
    const md5 = createHash('md5').update(bytes).digest('hex');
    return meta !== null && meta.size === bytes.byteLength && meta.etag.replaceAll('"', '') === md5 ? meta : null;
  };

  /** Aborts an upload until the server no longer knows it (S3 may keep parts that were in flight during an abort). */
  const abortUpload = async (Key: string, UploadId: string): Promise<unknown> => {
    // The failure is reported only once this returns: without a deadline, rounds of retried requests against an
    // endpoint that stopped answering would hold it for up to 2 x 3 x 3 idle timeouts.
    const abortSignal = AbortSignal.timeout(abortDeadlineMs);
    let problem: unknown = 'still listed after the aborts';
    for (let attempt = 1; attempt <= ABORT_ATTEMPTS && !abortSignal.aborted; attempt++) {
      try {
        await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }), { abortSignal });
      } catch (err) {
        if (nameOf(err) !== 'NoSuchUpload') problem = err;
      }
      try {
        await client.send(new ListPartsCommand({ Bucket, Key, UploadId, MaxParts: 1 }), { abortSignal });
      } catch (err) {
        if (nameOf(err) === 'NoSuchUpload' || statusOf(err) === 404) return null;
        problem = err;
      }
      if (attempt < ABORT_ATTEMPTS) await sleep(100 * attempt, undefined, { signal: abortSignal }).catch(() => {});
    }
    return abortSignal.aborted ? new Error(`gave up after ${abortDeadlineMs} ms: ${summary(problem)}`) : problem;
  };

  const putStream = async (
    key: string,
    body: AsyncIterable<Uint8Array>,
    options: PutOptions | undefined,
  ): Promise<ObjectMeta> => {
    const source = body[Symbol.asyncIterator]();
    // Up to one part is buffered: a body that ends by then goes in one PutObject (atomic create-only everywhere).
    // A body that throws here has sent nothing: its error propagates unchanged.
    const first: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const step = await source.next();
      if (step.done) return putBytes(key, concatBytes(first, size), options);
      first.push(step.value);
      size += step.value.byteLength;
      if (size > partSize) break;
    }
    const Key = prefix + key;
    const ifNoneMatch = options?.ifNoneMatch === '*';
    try {
      // If-None-Match goes with CompleteMultipartUpload: atomic on AWS S3; Ceph RGW 16 ignores it there, so this
      // HEAD is all that stops a large create-only write from replacing an object created meanwhile.
      if (ifNoneMatch && (await head(key)) !== null) throw new PreconditionFailedError(DRIVER, key);
      const out = await uploadMultipart({ client, Bucket, Key, partSize, queueSize, ifNoneMatch }, first, source);
      return await written(key, out.size, out.etag);
    } catch (caught) {
      const stopped = caught instanceof MultipartFailure ? caught : new MultipartFailure(caught, false, undefined);
      // Not awaited: a body stuck in a read must not hold up reporting the failure.
      if (!stopped.fromBody) void source.return?.().catch(() => undefined);
      const abortProblem = stopped.uploadId === undefined ? null : await abortUpload(Key, stopped.uploadId);
      if (stopped.fromBody) throw stopped.error;
      const err = stopped.error;
      if (err instanceof PxeError && abortProblem === null) throw err;
      const cause =
        abortProblem === null
          ? err
          : new Error(`${summary(err)}; abort of upload ${stopped.uploadId} failed: ${summary(abortProblem)}`, {
              cause: err,
            });
      throw failure('PUT', key, cause);
    }
  };

  return {
    driver: DRIVER,
    maxKeyBytes: S3_MAX_KEY_BYTES - new TextEncoder().encode(prefix).byteLength,

    async get(key, range) {
      const Key = check('GET', key);
      const span = byteSpan(range, Number.MAX_SAFE_INTEGER);
      if (span === null) throw new StorageError(DRIVER, 'GET', key, `invalid range ${JSON.stringify(range)}`);
      const length = range?.length;
      const emptyRange = async (): Promise<(ObjectMeta & { body: AsyncIterable<Uint8Array> }) | null> => {
        const meta = await head(key);
        return meta === null ? null : { ...meta, body: Readable.from([]) };
      };
      if (length === 0) return emptyRange();
      const Range =
        span.start === 0 && length === undefined
          ? undefined
          : `bytes=${span.start}-${length === undefined ? '' : span.start + length - 1}`;
      try {
        const out = await client.send(new GetObjectCommand({ Bucket, Key, ...(Range !== undefined && { Range }) }));
        const total = /\/(\d+)$/.exec(out.ContentRange ?? '')?.[1];
        const size = total !== undefined ? Number(total) : (out.ContentLength ?? 0);
        return { key, size, etag: out.ETag ?? '', body: bodyOf(key, out.Body) };
      } catch (err) {
        if (isAbsent(err)) return null;
        // A range starting at or past the end (also any range of an empty object): 416, the contract says empty.
        if (statusOf(err) === 416) return emptyRange();
        throw failure('GET', key, err);
      }
    },

    head,

    async put(key, body, options) {
      check('PUT', key);
      if (typeof body === 'string') return putBytes(key, new TextEncoder().encode(body), options);
      if (body instanceof Uint8Array) return putBytes(key, body, options);
      return putStream(key, body, options);
    },

    async delete(key) {
      const Key = check('DELETE', key);
      try {
        await client.send(new DeleteObjectCommand({ Bucket, Key }));
      } catch (err) {
        if (!isAbsent(err)) throw failure('DELETE', key, err);
      }
    },

    async list(listPrefix, options = {}) {
      const Prefix = check('LIST', listPrefix, 'prefix');
      // The cursor is the last key returned (StartAfter), like every other driver: any key is a valid cursor.
      const MaxKeys = Math.min(MAX_KEYS, Math.max(1, Math.floor(options.limit ?? MAX_KEYS)));
      const StartAfter = options.cursor === undefined ? undefined : prefix + options.cursor;
      try {
        const out = await client.send(
          new ListObjectsV2Command({ Bucket, Prefix, MaxKeys, ...(StartAfter !== undefined && { StartAfter }) }),
        );
        const keys = (out.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [o.Key.slice(prefix.length)]));
        const last = keys[keys.length - 1];
        return out.IsTruncated === true && last !== undefined ? { keys, cursor: last } : { keys };
      } catch (err) {
        throw failure('LIST', listPrefix, err);
      }
    },
  };
}

/**
 * Whether `store` really refuses a second create-only write of a key: writes a random probe key twice with
 * `ifNoneMatch: '*'` and reads it back. Honoured when the second write is refused with PreconditionFailedError and
 * the first bytes are still there. Some S3 engines accept and ignore `If-None-Match`; publication is only safe
 * against concurrent writers where it is honoured. The probe key is deleted afterwards.
 */
/** `failed`: the probe could not run at all (no write access, unreachable, misconfigured): not a verdict. */
export type ProbeResult = { honoured: boolean; detail: string; failed?: true };

export async function probeCreateOnly(store: ObjectStore): Promise<ProbeResult> {
  const key = `probes/create-only-${randomBytes(8).toString('hex')}`;
  const result = await (async (): Promise<ProbeResult> => {
    try {
      await store.put(key, 'first', { ifNoneMatch: '*' });
    } catch (err) {
      return { honoured: false, failed: true, detail: `the first create-only write of ${key} failed: ${summary(err)}` };
    }
    let refusal: string;
    try {
      await store.put(key, 'second', { ifNoneMatch: '*' });
      refusal = 'a second create-only write of an existing key succeeded';
    } catch (err) {
      if (!(err instanceof PreconditionFailedError))
        return {
          honoured: false,
          failed: true,
          detail: `the second create-only write failed unexpectedly: ${summary(err)}`,
        };
      refusal = '';
    }
    let text: string | null;
    try {
      const obj = await store.get(key);
      text = obj === null ? null : new TextDecoder().decode(await readAll(obj.body));
    } catch (err) {
      return { honoured: false, failed: true, detail: `reading the probe back failed: ${summary(err)}` };
    }
    if (refusal !== '') return { honoured: false, detail: `${refusal} (object now holds ${JSON.stringify(text)})` };
    if (text !== 'first') return { honoured: false, detail: `refused, but the object holds ${JSON.stringify(text)}` };
    return { honoured: true, detail: `${store.driver}: a second create-only write was refused and the first kept` };
  })();
  try {
    await store.delete(key);
  } catch (err) {
    return { ...result, detail: `${result.detail}; the probe key ${key} could not be deleted: ${summary(err)}` };
  }
  return result;
}

/** The SDK's Node body (an IncomingMessage) as the contract's iterable; ending the iteration early frees the socket. */
function bodyOf(key: string, body: unknown): AsyncIterable<Uint8Array> {
  if (!(body instanceof Readable)) throw new StorageError(DRIVER, 'GET', key, 'the response has no readable body');
  return {
    [Symbol.asyncIterator]() {
      const it = body[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
      return {
        next: () =>
          it.next().catch((err: unknown) => {
            throw new StorageError(DRIVER, 'GET', key, err);
          }),
        // Also when the consumer stops before its first read: the iterator alone would leave the response open.
        return: async () => {
          body.destroy();
          await it.return?.();
          return { done: true, value: undefined };
        },
      };
    },
  };
}

function failure(op: string, key: string, err: unknown): PxeError {
  if (err instanceof PxeError) return err;
  // A network error (ECONNREFUSED, ...) is described as it is; an S3 error answer by its status and code.
  return new StorageError(DRIVER, op, key, statusOf(err) === undefined ? err : new Error(summary(err), { cause: err }));
}
