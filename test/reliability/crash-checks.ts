/**
 * What must hold in a store after fetchers were killed (README "Crash safety"), read straight from the store so the
 * checks do not trust the code under test: every kept version of every published name has its bytes, of the size
 * and sha256 its pointer says; and no abandoned write is left once a writer restarted after the stale-write age.
 * No vitest imports: the soak entry runs these too.
 */
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { keys } from '../../src/core/object-keys.js';
import { latestPointer } from '../../src/core/pointers.js';
import { listAll, type ObjectStore } from '../../src/storage/object-store.js';

export type StoreUnderTest =
  | { readonly kind: 'file'; readonly store: ObjectStore; readonly root: string }
  | {
      readonly kind: 's3';
      readonly store: ObjectStore;
      readonly client: S3Client;
      readonly bucket: string;
      readonly prefix: string;
    };

/**
 * Verifies the pointer of `name`: its current version and every kept one exist under their data key with the size
 * and sha256 recorded (the bytes are read back and hashed). Returns the current sha256 (null: never published).
 */
export async function checkPointer(target: StoreUnderTest, name: string, problems: string[]): Promise<string | null> {
  const pointer = await latestPointer(target.store, name);
  if (!pointer) return null;
  if (pointer.versions[0]?.sha256 !== pointer.sha256)
    problems.push(`${name} generation ${pointer.generation}: the current version is not the first kept one`);
  const seen = new Set<string>();
  for (const v of [pointer, ...pointer.versions]) {
    if (seen.has(v.key)) continue;
    seen.add(v.key);
    const what = `${name} generation ${pointer.generation} version ${v.version} (${v.key})`;
    const obj = await target.store.get(v.key);
    if (!obj) {
      problems.push(`${what}: data object missing`);
      continue;
    }
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of obj.body) {
      hash.update(chunk);
      size += chunk.byteLength;
    }
    const sha256 = hash.digest('hex');
    if (size !== v.size || obj.size !== v.size) problems.push(`${what}: ${size} bytes, pointer says ${v.size}`);
    if (sha256 !== v.sha256) problems.push(`${what}: sha256 ${sha256}, pointer says ${v.sha256}`);
  }
  return pointer.sha256;
}

/** Abandoned in-flight writes: `.tmp-*` files of a file store, incomplete multipart uploads under an S3 prefix. */
export async function abandonedWrites(target: StoreUnderTest): Promise<string[]> {
  if (target.kind === 'file') return tempFiles(target.root);
  const found: string[] = [];
  let KeyMarker: string | undefined;
  let UploadIdMarker: string | undefined;
  for (;;) {
    const page = await target.client.send(
      new ListMultipartUploadsCommand({ Bucket: target.bucket, Prefix: target.prefix, KeyMarker, UploadIdMarker }),
    );
    for (const u of page.Uploads ?? [])
      found.push(`multipart upload ${u.Key} ${u.UploadId} (${u.Initiated?.toISOString()})`);
    if (!page.IsTruncated || page.NextKeyMarker === undefined) return found;
    KeyMarker = page.NextKeyMarker;
    UploadIdMarker = page.NextUploadIdMarker;
  }
}

export async function leaseKeys(store: ObjectStore): Promise<string[]> {
  const found: string[] = [];
  for await (const key of listAll(store, keys.leasesPrefix)) found.push(key);
  return found;
}

/**
 * Data objects no blob index points at: bytes of a fetch killed between its upload and its index write, or after
 * it. Not a correctness problem (nothing references them) and not yet collected by anything: counted, so the
 * summary shows what crashes leak.
 */
export async function orphanData(store: ObjectStore): Promise<number> {
  const indexed = new Set<string>();
  for await (const key of listAll(store, 'blobs/')) {
    const obj = await store.get(key);
    if (!obj) continue;
    let text = '';
    for await (const chunk of obj.body) text += Buffer.from(chunk).toString('utf8');
    indexed.add((JSON.parse(text) as { key: string }).key);
  }
  let orphans = 0;
  for await (const key of listAll(store, 'data/')) if (!indexed.has(key)) orphans++;
  return orphans;
}

async function tempFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await tempFiles(path)));
    else if (entry.name.startsWith('.tmp-')) found.push(`temp file ${path}`);
  }
  return found;
}
