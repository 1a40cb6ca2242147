/**
 * The fetcher on AWS Lambda (issue 6): the handler's runtime invoked with API Gateway v2 and Function URL events
 * against the Ceph RGW the run starts, fetch jobs in a separate (here: in-process) invocation, blobs answered with a
 * 302 to a presigned S3 URL that really serves the bytes, and a job that would outlive Lambda's 15 minutes ending
 * as `failed` on its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileStatus } from '../../src/core/records.js';
import { bytesOf, sha256 } from '../helpers/api.js';
import { createLambdaRuntime } from '../../src/runtime/lambda/runtime.js';
import { LAMBDA_TOKEN, startLambda, v2Event, type LambdaUnderTest } from '../helpers/lambda.js';
import { rgwEnv } from '../helpers/rgw.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';

let upstream: Upstream;
let lambda: LambdaUnderTest;
beforeAll(async () => {
  upstream = await createUpstream();
  lambda = await startLambda();
});
afterAll(async () => {
  await lambda?.close();
  await upstream?.close();
});

const auth = { authorization: `Bearer ${LAMBDA_TOKEN}` };

async function status(name: string, functionUrl = false): Promise<FileStatus> {
  const out = await lambda.http(v2Event('GET', `/api/v1/files/${name}`, { headers: auth, functionUrl }));
  expect(out.statusCode).toBe(200);
  return JSON.parse(out.body ?? '') as FileStatus;
}

describe.each([false, true])('AWS Lambda (function URL event: %s)', (functionUrl) => {
  it('fetch_boot_file: 200 empty, the job runs in its own invocation, the blob is a 302 to S3', async () => {
    const prefix = functionUrl ? 'boot/url' : 'boot/api';
    const kernel = bytesOf(`${prefix}-kernel`, 1024 * 1024 + 3);
    upstream.set(`/${prefix}/vmlinuz`, kernel);
    const form = new URLSearchParams({ prefix, path: upstream.url(`/${prefix}/vmlinuz`) }).toString();
    const out = await lambda.http(
      v2Event('POST', '/tftp/fetch_boot_file', {
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form,
        functionUrl,
      }),
    );
    expect(out.statusCode).toBe(200);
    expect(out.body ?? '').toBe('');
    const name = `${prefix}-vmlinuz`;
    const ready = await waitFor('ready', async () => {
      const s = await status(name, functionUrl);
      return { done: s.state !== 'fetching', value: s };
    });
    expect(ready).toMatchObject({ state: 'ready', sha256: sha256(kernel), size: kernel.byteLength });
    expect(upstream.downloads(`/${prefix}/vmlinuz`)).toBe(1);

    const blob = await lambda.http(v2Event('GET', `/api/v1/blobs/${sha256(kernel)}`, { headers: auth, functionUrl }));
    expect(blob.statusCode).toBe(302);
    const location = blob.headers?.['location'] ?? '';
    expect(location).toMatch(/X-Amz-Signature=/);
    const bytes = Buffer.from(await (await fetch(location)).arrayBuffer());
    expect(sha256(bytes)).toBe(sha256(kernel));
    const part = await fetch(location, { headers: { range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(kernel.subarray(10, 20));
  });
});

describe('AWS Lambda limits and input', () => {
  it('a job that would outlive the invocation fails with timeout before Lambda kills it', async () => {
    // Its invocation has 22 s left: after the 20 s margin, 2 s for a download that trickles for 30 s.
    const short = await startLambda({}, { jobRemainingMs: 22_000 });
    try {
      upstream.set('/slow/initrd.img', bytesOf('slow', 60 * 1024), { chunkDelayMs: 500, chunkSize: 1024 });
      const accepted = await short.http(
        v2Event('POST', '/api/v1/fetch', {
          headers: { ...auth, 'content-type': 'application/json' },
          query: 'wait=0',
          body: JSON.stringify({ name: 'boot/slow-initrd.img', url: upstream.url('/slow/initrd.img') }),
        }),
      );
      expect(accepted.statusCode).toBe(202);
      await Promise.all(short.jobs);
      const out = await short.http(v2Event('GET', '/api/v1/files/boot/slow-initrd.img', { headers: auth }));
      const failed = JSON.parse(out.body ?? '') as FileStatus;
      expect(failed).toMatchObject({ state: 'failed', version: null, error: { code: 'timeout' } });
      expect(failed.error?.message).toMatch(/fetch timeout/);
    } finally {
      await short.close();
    }
  }, 30_000);

  it('refuses a configuration it cannot serve, naming the variable', async () => {
    const never = async () => {};
    const entry = 'ops:admin:' + sha256('pxc_x');
    await expect(createLambdaRuntime({ PXECACHE_STORE: 'file:/srv/x', PXECACHE_TOKENS: entry }, never)).rejects.toThrow(
      /PXECACHE_STORE: "file:\/srv\/x" on Lambda must be s3:\/\/<bucket>\/<prefix>/,
    );
    await expect(createLambdaRuntime({ ...rgwEnv(), PXECACHE_STORE: 's3://bkt/p' }, never)).rejects.toThrow(
      /PXECACHE_TOKENS: the fetcher answers on the Internet/,
    );
    await expect(
      createLambdaRuntime({ PXECACHE_STORE: 's3://b/p', PXECACHE_TOKENS: entry, PXECACHE_KEEP_VERSIONS: '1' }, never),
    ).rejects.toThrow(/PXECACHE_KEEP_VERSIONS: /);
    await expect(createLambdaRuntime({ PXECACHE_STORE: 's3://b/p', PXECACHE_TOKENS: entry }, never)).rejects.toThrow(
      /PXECACHE_STORE: "s3:\/\/b\/p" needs a bucket name/,
    );
  });

  it('bad input is a 400 naming the field; the native API wants a token', async () => {
    const bad = await lambda.http(
      v2Event('POST', '/tftp/fetch_boot_file', {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'path=http://127.0.0.1/vmlinuz',
      }),
    );
    expect(bad).toMatchObject({ statusCode: 400 });
    expect(bad.body).toMatch(/^prefix: /);
    expect((await lambda.http(v2Event('GET', '/api/v1/files'))).statusCode).toBe(401);
  });
});
