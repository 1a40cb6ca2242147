import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createPartCutter } from './part-cutter.js';

export interface MultipartPlan {
  readonly client: S3Client;
  readonly Bucket: string;
  readonly Key: string;
  /** Every part but the last has exactly this many bytes. */
  readonly partSize: number;
  /** Parts in flight at once. */
  readonly queueSize: number;
  /** Sent with CompleteMultipartUpload: atomic create-only on AWS S3 (Ceph RGW 16 ignores it). */
  readonly ifNoneMatch: boolean;
}

/** Where a failed upload stopped: the error is the body's own when `fromBody`, else a part's or a command's. */
export class MultipartFailure extends Error {
  constructor(
    readonly error: unknown,
    readonly fromBody: boolean,
    readonly uploadId: string | undefined,
  ) {
    super('multipart upload failed', { cause: error });
  }
}

/**
 * Uploads `head` (drained) and then the rest of `source` as one multipart upload of fixed-size parts, and completes it.
 *
 * Memory is fixed by construction: at most `queueSize + 1` part buffers exist (parts in flight and the one being
 * filled), each allocated once and reused, and the source's chunks are copied into them and dropped. lib-storage
 * allocates a fresh buffer per part and concatenates into it, which measured 60-95 MiB of buffers for 8 MiB parts.
 * On any failure the source is no longer read, every part in flight has settled when this throws (a part landing
 * after an abort would be kept and billed), and the upload id, if any, comes with the MultipartFailure to abort.
 */
export async function uploadMultipart(
  plan: MultipartPlan,
  head: Uint8Array[],
  source: AsyncIterator<Uint8Array>,
): Promise<{ size: number; etag: string | undefined }> {
  const { client, Bucket, Key, partSize, queueSize } = plan;
  let uploadId: string | undefined;
  const done: CompletedPart[] = [];
  const free: Uint8Array[] = [];
  const inFlight = new Set<Promise<void>>();
  let partFailure: { error: unknown } | undefined;
  // Waits that a part failure ends. Not a race against one long-lived promise: every Promise.race adds a reaction to
  // it that keeps the race's result (a body chunk) alive until it settles, which here would be the whole body.
  const waiters = new Set<(error: unknown) => void>();
  const untilFailure = <T>(pending: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (partFailure !== undefined) return reject(partFailure.error);
      waiters.add(reject);
      pending.then(resolve, reject).finally(() => waiters.delete(reject));
    });

  const send = (bytes: Uint8Array, PartNumber: number): void => {
    const input = { Bucket, Key, UploadId: uploadId, PartNumber, Body: bytes, ContentLength: bytes.byteLength };
    const sending = client
      .send(new UploadPartCommand(input))
      .then(
        (out) => {
          done.push({ PartNumber, ETag: out.ETag });
          free.push(bytes);
        },
        (error: unknown) => {
          partFailure ??= { error };
          for (const stop of waiters) stop(error);
        },
      )
      .finally(() => inFlight.delete(sending));
    inFlight.add(sending);
  };

  /** A free part buffer, once fewer than `queueSize` parts are in flight. */
  const nextBuffer = async (): Promise<Uint8Array> => {
    // Parts in flight never reject (their failure is recorded): wait for one to end, then look.
    while (inFlight.size >= queueSize && partFailure === undefined) await Promise.race(inFlight);
    if (partFailure !== undefined) throw partFailure.error;
    const reused = free.pop();
    if (reused !== undefined) return reused;
    return Buffer.allocUnsafeSlow(partSize);
  };

  const cutter = createPartCutter({ partSize, nextBuffer, emit: send, partSizeOption: '--s3-part-size' });

  try {
    const created = await client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
    uploadId = created.UploadId;
    if (uploadId === undefined) throw new Error('CreateMultipartUpload answered without an UploadId');
    // Drained as copied: the buffered first part is not kept alive beside its copy.
    for (let chunk = head.shift(); chunk !== undefined; chunk = head.shift()) await cutter.take(chunk);
    for (;;) {
      let step: IteratorResult<Uint8Array>;
      try {
        // A part failing while the body stalls ends the wait: nothing more is read.
        step = await untilFailure(source.next());
      } catch (error) {
        if (partFailure !== undefined) throw error;
        throw new MultipartFailure(error, true, uploadId);
      }
      if (step.done) break;
      await cutter.take(step.value);
    }
    const { last, emitted, size } = cutter.rest();
    if (last.byteLength > 0) send(last, emitted + 1);
    while (inFlight.size > 0 && partFailure === undefined) await Promise.race(inFlight);
    if (partFailure !== undefined) throw partFailure.error;
    done.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    const out = await client.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key,
        UploadId: uploadId,
        MultipartUpload: { Parts: done },
        ...(plan.ifNoneMatch && { IfNoneMatch: '*' }),
      }),
    );
    return { size, etag: out.ETag };
  } catch (caught) {
    await Promise.allSettled([...inFlight]);
    if (caught instanceof MultipartFailure) throw caught;
    throw new MultipartFailure(partFailure?.error ?? caught, false, uploadId);
  }
}
