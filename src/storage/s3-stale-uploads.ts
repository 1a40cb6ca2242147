import {
  AbortMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { StorageError } from '../core/errors.js';
import { summary } from './s3-client.js';

/**
 * Aborts the multipart uploads under `prefix` that nobody has touched for `olderThanMs`: those of a writer killed
 * mid-put (kill -9, power loss, OOM), which S3 keeps (and bills) until someone aborts them. A live upload sends a
 * part every part-size bytes, so its newest part's time, not its initiation, tells whether it is abandoned: a long
 * transfer by another instance sharing the store is never cut off while it progresses. The store prefix belongs to
 * pxecache (as a file store's directory does), so every upload under it is one of its writers'.
 * Returns how many uploads were aborted.
 */
export async function abortStaleUploads(
  client: S3Client,
  Bucket: string,
  prefix: string,
  olderThanMs: number,
  now: number = Date.now(),
): Promise<number> {
  const cutoff = now - olderThanMs;
  let aborted = 0;
  let KeyMarker: string | undefined;
  let UploadIdMarker: string | undefined;
  for (;;) {
    const page = await wrap(
      'LIST-UPLOADS',
      prefix,
      client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: prefix, KeyMarker, UploadIdMarker })),
    );
    for (const upload of page.Uploads ?? []) {
      const { Key, UploadId, Initiated } = upload;
      if (Key === undefined || UploadId === undefined || Initiated === undefined) continue;
      if (Initiated.getTime() >= cutoff) continue;
      if ((await lastActivity(client, Bucket, Key, UploadId, Initiated.getTime())) >= cutoff) continue;
      await wrap('ABORT', Key, client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })));
      aborted++;
    }
    if (!page.IsTruncated) return aborted;
    KeyMarker = page.NextKeyMarker;
    UploadIdMarker = page.NextUploadIdMarker;
    if (KeyMarker === undefined) return aborted;
  }
}

/** The newest part's upload time, or `initiated` when no part arrived yet. */
async function lastActivity(
  client: S3Client,
  Bucket: string,
  Key: string,
  UploadId: string,
  initiated: number,
): Promise<number> {
  let newest = initiated;
  let PartNumberMarker: string | undefined;
  for (;;) {
    const page = await wrap(
      'LIST-PARTS',
      Key,
      client.send(new ListPartsCommand({ Bucket, Key, UploadId, PartNumberMarker })),
    );
    for (const part of page.Parts ?? []) newest = Math.max(newest, part.LastModified?.getTime() ?? 0);
    if (!page.IsTruncated || page.NextPartNumberMarker === undefined) return newest;
    PartNumberMarker = page.NextPartNumberMarker;
  }
}

async function wrap<T>(op: string, key: string, sending: Promise<T>): Promise<T> {
  try {
    return await sending;
  } catch (err) {
    throw new StorageError('s3', op, key, summary(err));
  }
}
