import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  PutBucketPolicyCommand,
  ListMultipartUploadsCommand,
  paginateListObjectsV2,
  type S3Client,
} from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import { createS3ClientFromEnv } from '../../src/storage/s3-client.js';

/** The RGW the whole test run shares (started once by test/global-setup.ts), as `<dir>/env` describes it. */
export type RgwEnv = {
  /** AWS environment conventions for the `test` user, which owns the test buckets. */
  readonly AWS_ENDPOINT_URL_S3: string;
  readonly AWS_REGION: string;
  readonly AWS_ACCESS_KEY_ID: string;
  readonly AWS_SECRET_ACCESS_KEY: string;
  /** A second user with no buckets of its own, for read-only tests through bucket policies. */
  readonly RGW_READER_ACCESS_KEY_ID: string;
  readonly RGW_READER_SECRET_ACCESS_KEY: string;
  readonly RGW_PORT: string;
};

declare module 'vitest' {
  export interface ProvidedContext {
    rgw: RgwEnv;
  }
}

export const RGW_SCRIPT = fileURLToPath(new URL('../../scripts/ceph-rgw.sh', import.meta.url));
const run = promisify(execFile);
const KEYS = [
  'AWS_ENDPOINT_URL_S3',
  'AWS_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'RGW_READER_ACCESS_KEY_ID',
  'RGW_READER_SECRET_ACCESS_KEY',
  'RGW_PORT',
] as const;

/** Starts a throwaway single-node Ceph RGW with scripts/ceph-rgw.sh; throws with its output when it cannot. */
export async function startRgw(): Promise<{ env: RgwEnv; dir: string; stop: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pxecache-rgw-'));
  const stop = async (): Promise<void> => {
    await run('bash', [RGW_SCRIPT, 'stop', dir], { timeout: 60_000 });
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await run('bash', [RGW_SCRIPT, 'start', dir], { timeout: 120_000 });
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    // The script stops what it started on failure; the directory stays for its logs.
    throw new Error(
      `Ceph RGW did not start (scripts/ceph-rgw.sh start ${dir}); S3 tests need it (bash scripts/setup.sh installs ` +
        `ceph-mon ceph-osd radosgw ceph-common):\n${stderr}${stdout}`,
      { cause: err },
    );
  }
  const values = new Map<string, string>();
  for (const line of (await readFile(join(dir, 'env'), 'utf8')).split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) values.set(line.slice(0, at), line.slice(at + 1));
  }
  const env = Object.fromEntries(
    KEYS.map((k) => {
      const value = values.get(k);
      if (value === undefined) throw new Error(`${dir}/env has no ${k}`);
      return [k, value];
    }),
  ) as unknown as RgwEnv;
  return { env, dir, stop };
}

/** The shared RGW's environment, as globalSetup provided it. */
export function rgwEnv(): RgwEnv {
  const env = inject('rgw');
  if (env === undefined)
    throw new Error('no RGW was provided: is test/global-setup.ts registered in vitest.config.ts?');
  return env;
}

/** A client of the shared RGW as user `test` (default) or `reader`. */
export function rgwClient(user: 'test' | 'reader' = 'test'): S3Client {
  const env = rgwEnv();
  return createS3ClientFromEnv(
    user === 'test'
      ? env
      : {
          ...env,
          AWS_ACCESS_KEY_ID: env.RGW_READER_ACCESS_KEY_ID,
          AWS_SECRET_ACCESS_KEY: env.RGW_READER_SECRET_ACCESS_KEY,
        },
  );
}

/**
 * A fresh bucket of user `test` with a random name, so tests never share state. `cleanup` empties it (objects and
 * pending multipart uploads: memstore keeps everything in RAM) and deletes it.
 */
export async function createTestBucket(client: S3Client): Promise<{ bucket: string; cleanup: () => Promise<void> }> {
  const bucket = `pxecache-test-${randomBytes(6).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const cleanup = async (): Promise<void> => {
    for (;;) {
      const { Uploads = [] } = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      for (const u of Uploads)
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
      if (Uploads.length === 0) break;
    }
    for await (const page of paginateListObjectsV2({ client }, { Bucket: bucket })) {
      const Objects = (page.Contents ?? []).map((o) => ({ Key: o.Key }));
      if (Objects.length > 0) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects } }));
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  };
  return { bucket, cleanup };
}

/** Lets the `reader` user read (GetObject, ListBucket) one bucket of user `test`, and nothing else. */
export async function grantReader(bucket: string): Promise<void> {
  const Policy = JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { AWS: ['arn:aws:iam:::user/reader'] },
        Action: ['s3:GetObject', 's3:ListBucket'],
        Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`],
      },
    ],
  });
  await rgwClient().send(new PutBucketPolicyCommand({ Bucket: bucket, Policy }));
}
