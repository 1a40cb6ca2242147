import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, PreconditionFailedError, StorageError } from '../../src/core/errors.js';
import { listAll, readAll, type ObjectStore } from '../../src/storage/object-store.js';
import { createS3ClientFromEnv } from '../../src/storage/s3-client.js';
import { createS3Store, probeCreateOnly } from '../../src/storage/s3-store.js';
import { openStore } from '../../src/storage/store-url.js';
import { createTestBucket, rgwClient, rgwEnv, grantReader } from '../helpers/rgw.js';
import { describeObjectStore } from './conformance.js';

const MiB = 1024 * 1024;
const decoder = new TextDecoder();

let shared: S3Client | undefined;
const client = (): S3Client => (shared ??= rgwClient());
afterAll(() => shared?.destroy());

describeObjectStore('s3 (Ceph RGW)', async () => {
  const { bucket, cleanup } = await createTestBucket(client());
  return { store: createS3Store({ bucket, prefix: 'conformance/', client: client() }), cleanup };
});

/** Deterministic bytes, a fresh buffer per chunk (a driver that kept chunks would show in RSS). */
async function* generated(
  total: number,
  chunk: number,
  hash?: ReturnType<typeof createHash>,
): AsyncIterable<Uint8Array> {
  for (let sent = 0, i = 0; sent < total; sent += chunk, i++) {
    const part = Buffer.alloc(Math.min(chunk, total - sent), i % 251);
    part.writeUInt32BE(i, 0);
    hash?.update(part);
    yield part;
  }
}

async function sha256Of(body: AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of body) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: hash.digest('hex'), size };
}

/** The names of the commands a client sends, and a hook that can fail one before it leaves (faults RGW cannot make). */
function instrument(c: S3Client, fault?: (command: string, nth: number) => Error | undefined): string[] {
  const sent: string[] = [];
  c.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? '?';
      sent.push(name);
      const error = fault?.(name, sent.filter((n) => n === name).length);
      if (error !== undefined) throw error;
      return next(args);
    },
    { step: 'initialize', name: 'pxecacheTestInstrument' },
  );
  return sent;
}

/** What the SDK throws for an S3 error answer (RGW sends no message, so the SDK's message is UnknownError). */
function s3Error(status: number, name: string): Error {
  return Object.assign(new Error('UnknownError'), { name, $metadata: { httpStatusCode: status } });
}

describe('s3 store against Ceph RGW', () => {
  let bucket: string;
  let cleanup: () => Promise<void>;
  let store: ObjectStore;
  beforeEach(async () => {
    ({ bucket, cleanup } = await createTestBucket(client()));
    store = createS3Store({ bucket, prefix: 'p/', client: client() });
  });
  afterEach(async () => {
    await cleanup();
  });

  const pendingUploads = async (): Promise<number> =>
    (await client().send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads?.length ?? 0;

  it('streams a 64 MiB body as equal-size parts, at most queueSize in flight, and reads back the same sha256', async () => {
    const c = rgwClient();
    let inFlight = 0;
    let most = 0;
    const partSizes: number[] = [];
    c.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'UploadPartCommand') return next(args);
        const input = args.input as { PartNumber: number; ContentLength: number };
        partSizes[input.PartNumber - 1] = input.ContentLength;
        most = Math.max(most, ++inFlight);
        try {
          return await next(args);
        } finally {
          inFlight--;
        }
      },
      { step: 'initialize', name: 'pxecacheTestConcurrency' },
    );
    const partStore = createS3Store({ bucket, prefix: 'p/', client: c, partSizeBytes: 6 * MiB, queueSize: 2 });
    const sent = createHash('sha256');
    // Chunks that do not divide the part size: parts are cut across chunk boundaries.
    const size = 64 * MiB + 123;
    const meta = await partStore.put('big/64', generated(size, 100_003, sent));
    expect(meta.size).toBe(size);
    // A multipart ETag is `"<md5 of part md5s>-<parts>"`: ceil(64 MiB / 6 MiB) = 11 parts.
    expect(meta.etag).toMatch(/-11"?$/);
    // (RGW 16 ignores HeadObject's PartNumber: the sizes are those the parts were sent with.)
    expect(partSizes).toEqual([...Array<number>(10).fill(6 * MiB), size - 10 * 6 * MiB]);
    expect(most).toBe(2);
    expect(await store.head('big/64')).toEqual(meta);
    const obj = await store.get('big/64');
    expect(await sha256Of(obj!.body)).toEqual({ sha256: sent.digest('hex'), size });
    const ranged = await store.get('big/64', { offset: 10 * MiB - 3, length: 6 });
    expect(ranged?.size).toBe(size);
    expect((await readAll(ranged!.body)).byteLength).toBe(6);
    c.destroy();
  }, 120_000);

  it('a body that throws mid-multipart: the same error, no object, no pending multipart upload', async () => {
    const c = rgwClient();
    const sent = instrument(c);
    const failing = createS3Store({ bucket, prefix: 'p/', client: c });
    const boom = new Error('upstream reset after 20 MiB');
    async function* body(): AsyncIterable<Uint8Array> {
      yield* generated(20 * MiB, MiB);
      throw boom;
    }
    await expect(failing.put('f/obj', body())).rejects.toBe(boom);
    // The upload really was multipart, so the empty listing below proves the abort.
    expect(sent).toContain('CreateMultipartUploadCommand');
    expect(sent).toContain('UploadPartCommand');
    expect(sent).toContain('AbortMultipartUploadCommand');
    expect(await pendingUploads()).toBe(0);
    expect(await failing.head('f/obj')).toBeNull();
    c.destroy();
  }, 60_000);

  it('retries an abort that failed: the upload is gone and the body error still surfaces unchanged', async () => {
    const c = rgwClient();
    const sent = instrument(c, (name, nth) =>
      name === 'AbortMultipartUploadCommand' && nth === 1 ? s3Error(503, 'SlowDown') : undefined,
    );
    const failing = createS3Store({ bucket, prefix: 'p/', client: c });
    const boom = new Error('boom');
    async function* body(): AsyncIterable<Uint8Array> {
      yield* generated(18 * MiB, MiB);
      throw boom;
    }
    await expect(failing.put('f/retry', body())).rejects.toBe(boom);
    expect(sent.filter((n) => n === 'AbortMultipartUploadCommand').length).toBeGreaterThanOrEqual(2);
    expect(await pendingUploads()).toBe(0);
    c.destroy();
  }, 60_000);

  it('a part upload the server refuses: StorageError naming driver, operation, key and status; upload aborted', async () => {
    const c = rgwClient();
    instrument(c, (name, nth) => (name === 'UploadPartCommand' && nth === 2 ? s3Error(503, 'SlowDown') : undefined));
    const failing = createS3Store({ bucket, prefix: 'p/', client: c });
    const put = failing.put('f/slow', generated(20 * MiB, MiB));
    await expect(put).rejects.toBeInstanceOf(StorageError);
    await expect(put).rejects.toThrow('[store:s3] PUT f/slow: 503 SlowDown');
    expect(await pendingUploads()).toBe(0);
    expect(await failing.head('f/slow')).toBeNull();
    c.destroy();
  }, 60_000);

  it('create-only: exactly one of 16 concurrent writers of one key wins, every round', async () => {
    for (let round = 0; round < 3; round++) {
      const key = `race/${round}`;
      const results = await Promise.allSettled(
        Array.from({ length: 16 }, (_, i) => store.put(key, `writer-${i}`, { ifNoneMatch: '*' })),
      );
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(won).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(PreconditionFailedError);
      const obj = await store.get(key);
      expect(decoder.decode(await readAll(obj!.body))).toBe(`writer-${won[0]}`);
    }
  });

  it('create-only retries a 500 that wrote nothing, and a 412 after a 500 that did write is a win, not a loss', async () => {
    // Ceph RGW once answered a losing concurrent creator with 500 instead of 412. Both faults are injected around
    // the real request: one before it leaves (nothing written), one after it succeeded (written, answer lost).
    const c = rgwClient();
    let mode: 'before' | 'after' | 'none' = 'before';
    c.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'PutObjectCommand' || mode === 'none') return next(args);
        const current = mode;
        mode = 'none';
        if (current === 'before') throw s3Error(500, 'InternalError');
        await next(args);
        throw s3Error(500, 'InternalError');
      },
      { step: 'initialize', name: 'pxecacheTestFault' },
    );
    const flaky = createS3Store({ bucket, prefix: 'p/', client: c });
    expect(await flaky.put('cr/before', 'mine', { ifNoneMatch: '*' })).toMatchObject({ size: 4 });
    mode = 'after';
    const meta = await flaky.put('cr/after', 'mine too', { ifNoneMatch: '*' });
    expect(meta).toEqual(await store.head('cr/after'));
    // Someone else's bytes behind the 412 stay a loss.
    await store.put('cr/taken', 'theirs');
    mode = 'before';
    await expect(flaky.put('cr/taken', 'mine', { ifNoneMatch: '*' })).rejects.toBeInstanceOf(PreconditionFailedError);
    c.destroy();
  });

  it('create-only of a streamed multi-part body is refused when the key exists, before any upload', async () => {
    await store.put('c/big', 'small original');
    const c = rgwClient();
    const sent = instrument(c);
    const other = createS3Store({ bucket, prefix: 'p/', client: c });
    await expect(other.put('c/big', generated(12 * MiB, MiB), { ifNoneMatch: '*' })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    expect(sent).not.toContain('CreateMultipartUploadCommand');
    expect(decoder.decode(await readAll((await store.get('c/big'))!.body))).toBe('small original');
    // And a fresh key accepts a create-only multipart write.
    const meta = await other.put('c/new', generated(12 * MiB, MiB), { ifNoneMatch: '*' });
    expect(meta).toMatchObject({ size: 12 * MiB });
    // Parts of the default 5 MiB: 5 + 5 + 2.
    expect(meta.etag).toMatch(/-3"?$/);
    c.destroy();
  }, 60_000);

  it('paginates: limit 3 over 10 keys, and more than 1000 keys in pages of 1000', async () => {
    const ten = Array.from({ length: 10 }, (_, i) => `l/k${String(i).padStart(2, '0')}`);
    for (const key of ten) await store.put(key, key);
    const pages: (readonly string[])[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.list('l/', cursor === undefined ? { limit: 3 } : { limit: 3, cursor });
      pages.push(page.keys);
      cursor = page.cursor;
    } while (cursor !== undefined);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 3, 1]);
    expect(pages.flat()).toEqual(ten);

    const many = Array.from({ length: 1005 }, (_, i) => `m/${String(i).padStart(4, '0')}`);
    for (let i = 0; i < many.length; i += 50) await Promise.all(many.slice(i, i + 50).map((key) => store.put(key, '')));
    const first = await store.list('m/');
    expect(first.keys).toHaveLength(1000);
    expect(first.cursor).toBe('m/0999');
    const all: string[] = [];
    for await (const key of listAll(store, 'm/')) all.push(key);
    expect(all).toEqual(many);
    // The SDK's own paginator sees the same objects under the store's prefix.
    let native = 0;
    for await (const page of paginateListObjectsV2({ client: client() }, { Bucket: bucket, Prefix: 'p/m/' }))
      native += page.KeyCount ?? 0;
    expect(native).toBe(1005);
  }, 60_000);

  it('keeps keys under its prefix: objects outside it are neither listed nor read', async () => {
    await client().send(new PutObjectCommand({ Bucket: bucket, Key: 'outside', Body: 'x' }));
    await client().send(new PutObjectCommand({ Bucket: bucket, Key: 'p2/inside-looking', Body: 'x' }));
    await store.put('in', 'y');
    expect((await store.list('')).keys).toEqual(['in']);
    expect(await store.get('outside')).toBeNull();
    const raw = await client().send(new HeadObjectCommand({ Bucket: bucket, Key: 'p/in' }));
    expect(raw.ContentLength).toBe(1);
  });

  it('the create-only probe: honoured by RGW, not by a store that drops If-None-Match', async () => {
    expect(await probeCreateOnly(store)).toMatchObject({ honoured: true });
    // A server that ignores If-None-Match: the same real store with the option dropped.
    const ignoring: ObjectStore = { ...store, put: (key, body) => store.put(key, body) };
    const probe = await probeCreateOnly(ignoring);
    expect(probe.honoured).toBe(false);
    expect(probe.detail).toContain('second create-only write of an existing key succeeded');
    // The probe cleans up after itself both ways.
    expect((await store.list('')).keys).toEqual([]);
  });

  it('reads through a bucket policy with the read-only user; its writes fail with AccessDenied', async () => {
    await store.put('r/obj', 'readable');
    await grantReader(bucket);
    const readerClient = rgwClient('reader');
    const reader = createS3Store({ bucket, prefix: 'p/', client: readerClient });
    expect(decoder.decode(await readAll((await reader.get('r/obj'))!.body))).toBe('readable');
    expect(await reader.head('r/obj')).toMatchObject({ size: 8 });
    expect((await reader.list('r/')).keys).toEqual(['r/obj']);
    for (const write of [() => reader.put('r/obj', 'changed'), () => reader.delete('r/obj')]) {
      const attempt = write();
      await expect(attempt).rejects.toBeInstanceOf(StorageError);
      await expect(attempt).rejects.toThrow(/^\[store:s3\] (PUT|DELETE) r\/obj: 403 AccessDenied/);
    }
    expect(await reader.head('r/obj')).toMatchObject({ size: 8 });
    // Without the policy, the reader sees nothing: the grant above is what made the reads work.
    const { bucket: privateBucket, cleanup: cleanupPrivate } = await createTestBucket(client());
    const denied = createS3Store({ bucket: privateBucket, prefix: '', client: readerClient });
    await expect(denied.list('')).rejects.toThrow('403 AccessDenied');
    await cleanupPrivate();
    readerClient.destroy();
  });

  it('streams 512 MiB through put() with bounded memory', async () => {
    const before = process.memoryUsage().rss;
    let peak = before;
    const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      const meta = await store.put('mem/512', generated(512 * MiB, MiB));
      expect(meta.size).toBe(512 * MiB);
    } finally {
      clearInterval(sample);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    // Live by construction: at most queueSize + 1 = 4 part buffers of 5 MiB, reused. On top comes garbage V8 has not
    // collected yet (Buffers are external memory; this test process runs without the CLI's small young generation)
    // and what glibc keeps: measured 53-55 MiB here (lib-storage, which allocates a buffer per part: 93-132 MiB). A
    // driver that buffered the body, kept its parts or leaked its chunks (a race against a long-lived promise did) fails.
    expect((peak - before) / MiB).toBeLessThan(80);
    await store.delete('mem/512');
  }, 180_000);
});

describe('createS3ClientFromEnv', () => {
  it('uses path-style addressing with a custom endpoint and checksums only where required', async () => {
    const c = createS3ClientFromEnv({ AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_ACCESS_KEY_ID: 'a' });
    expect(c.config.forcePathStyle).toBe(true);
    expect(await c.config.region()).toBe('us-east-1');
    expect(await c.config.requestChecksumCalculation()).toBe('WHEN_REQUIRED');
    expect(await c.config.responseChecksumValidation()).toBe('WHEN_REQUIRED');
    const endpoint = await c.config.endpoint?.();
    expect(`${endpoint?.protocol}//${endpoint?.hostname}:${endpoint?.port}`).toBe('http://127.0.0.1:9');
    // AWS_ENDPOINT_URL_S3 wins over the generic one; the region comes from the environment when set.
    const s3 = createS3ClientFromEnv({
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:10',
      AWS_REGION: 'eu-west-3',
    });
    expect((await s3.config.endpoint?.())?.port).toBe(10);
    expect(await s3.config.region()).toBe('eu-west-3');
    expect(createS3ClientFromEnv({ AWS_REGION: 'eu-west-3' }).config.forcePathStyle).toBe(false);
  });

  // Regression: the SDK sets no timeout by default, and a full RGW memstore once made a fetch hang forever.
  it('sets a connect and an idle timeout by default, and AWS_MAX_ATTEMPTS tries', async () => {
    const c = createS3ClientFromEnv(rgwEnv());
    await c.send(new ListBucketsCommand({}));
    const handler = c.config.requestHandler as unknown as { httpHandlerConfigs(): Record<string, unknown> };
    expect(handler.httpHandlerConfigs()).toMatchObject({ connectionTimeout: 5_000, socketTimeout: 60_000 });
    expect(await c.config.maxAttempts()).toBe(3);
    c.destroy();
    expect(await createS3ClientFromEnv({ ...rgwEnv(), AWS_MAX_ATTEMPTS: '5' }).config.maxAttempts()).toBe(5);
  });

  it('gives up on a server that accepts requests and never answers: idle timeout, AWS_MAX_ATTEMPTS tries', async () => {
    const held = new Set<Socket>();
    let requests = 0;
    const server = createServer((req) => {
      requests += 1;
      req.resume();
    });
    server.on('connection', (socket: Socket) => held.add(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const env = { ...rgwEnv(), AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    try {
      for (const [attempts, expected] of [
        [undefined, 3],
        ['1', 1],
      ] as const) {
        requests = 0;
        const c = createS3ClientFromEnv(attempts === undefined ? env : { ...env, AWS_MAX_ATTEMPTS: attempts }, {
          idleTimeoutMs: 300,
        });
        const err: unknown = await c.send(new HeadObjectCommand({ Bucket: 'b', Key: 'k' })).catch((e: unknown) => e);
        expect((err as Error).name).toBe('TimeoutError');
        expect(requests).toBe(expected);
        c.destroy();
      }
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('s3:// store URLs', () => {
  let bucket: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ bucket, cleanup } = await createTestBucket(client()));
  });
  afterEach(async () => {
    await cleanup();
  });

  it('opens s3://<bucket>/<prefix> from the AWS environment, probes create-only and stores under the prefix', async () => {
    const opened = await openStore(`s3://${bucket}/pxe/cache`, 'store', { env: rgwEnv() });
    expect(opened).toMatchObject({ description: `s3://${bucket}/pxe/cache/`, directory: null });
    expect(opened.createOnly).toMatchObject({ honoured: true });
    await opened.store.put('a/b', 'x');
    const raw = await client().send(new HeadObjectCommand({ Bucket: bucket, Key: 'pxe/cache/a/b' }));
    expect(raw.ContentLength).toBe(1);
    expect((await opened.store.list('')).keys).toEqual(['a/b']);
  });

  it('opens a bucket without a prefix, and can skip the probe', async () => {
    const opened = await openStore(`s3://${bucket}`, 'store', { env: rgwEnv(), probe: false });
    expect(opened.createOnly).toBeNull();
    expect(opened.description).toBe(`s3://${bucket}/`);
    await opened.store.put('top', 'x');
    expect((await opened.store.list('')).keys).toEqual(['top']);
  });

  it('reports a probe that could not write instead of deciding what it means', async () => {
    const env = { ...rgwEnv(), AWS_SECRET_ACCESS_KEY: 'wrong' };
    const opened = await openStore(`s3://${bucket}/x`, 'store', { env });
    expect(opened.createOnly?.honoured).toBe(false);
    expect(opened.createOnly?.detail).toContain('403 SignatureDoesNotMatch');
  });

  it('rejects malformed s3:// URLs with the option name', async () => {
    for (const url of ['s3://', 's3:///prefix', 's3://UPPER/x', 's3://ok-bucket/x//y', 's3://ok-bucket/../x']) {
      await expect(openStore(url, 'source'), url).rejects.toBeInstanceOf(ConfigError);
      await expect(openStore(url, 'source'), url).rejects.toThrow('--source:');
    }
  });
});
