/**
 * Long downloads on Workers survive being cut off (issue 5, item 3), in real workerd with local R2 and Workflows:
 * a download cut mid-body continues from its last stored 8 MiB part with `Range` + `If-Range: <strong ETag>`, so
 * upstream sends one file's worth plus the bytes lost after that part; a respin between the cut and the resume, or a
 * weak ETag, starts over from byte 0 and never stores a mix of two versions; and the progress saved in R2 outlives
 * the job, so the next job (or the Workflow step's retry) continues it.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileStatus } from '../../src/core/records.js';
import { sha256 } from '../helpers/api.js';
import { createUpstream, strongEtag, type Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { startTestWorker, type TestWorker } from '../helpers/worker.js';

const MiB = 1024 * 1024;
/** The R2 store's part size: what a cut loses at most. */
const PART = 8 * MiB;

let upstream: Upstream;
let worker: TestWorker;
beforeAll(async () => {
  upstream = await createUpstream();
  worker = await startTestWorker();
}, 60_000);
afterAll(async () => {
  await worker?.dispose();
  await upstream?.close();
});

const admin = () => ({ authorization: `Bearer ${worker.tokens.admin}` });

async function fetchFile(name: string, path: string): Promise<void> {
  const res = await worker.request('/api/v1/fetch?wait=0', {
    method: 'POST',
    headers: { ...admin(), 'content-type': 'application/json' },
    body: JSON.stringify({ name, url: upstream.url(path) }),
  });
  expect([200, 202]).toContain(res.status);
}

/** Local R2 can hold a read issued during a long streamed write (see workers.test.ts): such a poll is asked again. */
async function until(name: string, state: 'ready' | 'failed', timeoutMs = 120_000): Promise<FileStatus | null> {
  return waitFor(
    `${name} ${state}`,
    async () => {
      let s: FileStatus | null = null;
      try {
        const res = await worker.request(`/api/v1/files/${name}`, {
          headers: admin(),
          signal: AbortSignal.timeout(10_000),
        });
        s = res.status === 200 ? ((await res.json()) as FileStatus) : null;
      } catch (err) {
        if ((err as Error).name !== 'TimeoutError') throw err;
      }
      return { done: s?.state === 'ready' || s?.state === 'failed', value: s };
    },
    { timeoutMs, intervalMs: 100 },
  );
}

async function blob(sha: string): Promise<Buffer> {
  const res = await worker.request(`/api/v1/blobs/${sha}`, { headers: admin() });
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/** Body bytes upstream sent for `path` as the file (200 and 206), not error pages. */
const fileBytesServed = (path: string) =>
  upstream.requests
    .filter((r) => r.path === path && (r.status === 200 || r.status === 206))
    .reduce((n, r) => n + r.bodyBytes, 0);

/** The GETs of `path` that asked for its bytes (not the conditional check after each download). */
const gets = (path: string) =>
  upstream.requests.filter((r) => r.path === path && !r.headers['if-none-match'] && !r.headers['if-modified-since']);

describe('resumable downloads on Workers (workerd, R2 multipart, If-Range)', () => {
  it('a download cut mid-body continues from its last stored part: one file plus the lost remainder from upstream', async () => {
    const path = '/resume/cl/initrd.img';
    const bytes = randomBytes(40 * MiB + 123);
    const cutAt = 2 * PART + 5 * MiB + 7;
    upstream.set(path, bytes, { faults: [{ truncateAt: cutAt }] });
    await fetchFile('boot/resume-cl-initrd.img', path);
    const ready = await until('boot/resume-cl-initrd.img', 'ready');
    expect(ready).toMatchObject({ state: 'ready', sha256: sha256(bytes), size: bytes.byteLength, generation: 1 });
    // The two parts stored before the cut are not asked for again; the 5 MiB after them are.
    expect(upstream.bytesServed(path)).toBe(bytes.byteLength + (cutAt - 2 * PART));
    const [first, resumed, ...rest] = gets(path);
    expect(rest).toEqual([]);
    expect(first?.headers['range']).toBeUndefined();
    expect(resumed).toMatchObject({ status: 206 });
    expect(resumed?.headers['range']).toBe(`bytes=${2 * PART}-`);
    expect(resumed?.headers['if-range']).toBe(strongEtag(bytes));
    expect(sha256(await blob(sha256(bytes)))).toBe(sha256(bytes));
  }, 180_000);

  it('a chunked download (no Content-Length) cut mid-body continues the same way', async () => {
    const path = '/resume/chunked/initrd.img';
    const bytes = randomBytes(30 * MiB + 5);
    const cutAt = 3 * PART + MiB;
    upstream.set(path, bytes, { chunked: true, faults: [{ truncateAt: cutAt }] });
    await fetchFile('boot/resume-chunked-initrd.img', path);
    const ready = await until('boot/resume-chunked-initrd.img', 'ready');
    expect(ready).toMatchObject({ state: 'ready', sha256: sha256(bytes), size: bytes.byteLength });
    expect(upstream.bytesServed(path)).toBe(bytes.byteLength + (cutAt - 3 * PART));
    expect(gets(path).map((r) => r.status)).toEqual([200, 206]);
    expect(sha256(await blob(sha256(bytes)))).toBe(sha256(bytes));
  }, 180_000);

  it('a respin between the cut and the resume starts over from byte 0 and publishes only the new bytes', async () => {
    const path = '/resume/respin/initrd.img';
    const old = randomBytes(24 * MiB + 1);
    const respun = randomBytes(20 * MiB + 99);
    const cutAt = 2 * PART + 3;
    upstream.set(path, old, { faults: [{ truncateAt: cutAt, onCut: () => upstream.set(path, respun) }] });
    await fetchFile('boot/resume-respin-initrd.img', path);
    const ready = await until('boot/resume-respin-initrd.img', 'ready');
    // If-Range named the old ETag: upstream answered 200 with all of the new file, which alone was stored.
    expect(ready).toMatchObject({ state: 'ready', sha256: sha256(respun), size: respun.byteLength });
    const [, again] = gets(path);
    expect(again?.headers['if-range']).toBe(strongEtag(old));
    expect(again?.status).toBe(200);
    expect(upstream.bytesServed(path)).toBe(cutAt + respun.byteLength);
    expect(sha256(await blob(sha256(respun)))).toBe(sha256(respun));
  }, 180_000);

  it('a weak ETag is never continued: the cut fails the job, and the next one downloads from byte 0', async () => {
    const path = '/resume/weak/initrd.img';
    const bytes = randomBytes(20 * MiB);
    const cutAt = 2 * PART + 10;
    upstream.set(path, bytes, { etag: 'W/"weak-1"', faults: [{ truncateAt: cutAt }] });
    await fetchFile('boot/resume-weak-initrd.img', path);
    const failed = await until('boot/resume-weak-initrd.img', 'failed');
    expect(failed).toMatchObject({ state: 'failed', error: { code: 'truncated' } });
    await fetchFile('boot/resume-weak-initrd.img', path);
    const ready = await until('boot/resume-weak-initrd.img', 'ready');
    expect(ready).toMatchObject({ state: 'ready', sha256: sha256(bytes), size: bytes.byteLength });
    console.log(
      JSON.stringify(upstream.requests.filter((r) => r.path === path).map((r) => [r.status, r.bodyBytes, r.headers])),
    );
    expect(gets(path).map((r) => r.headers['range'])).toEqual([undefined, undefined]);
    expect(upstream.bytesServed(path)).toBe(cutAt + bytes.byteLength);
  }, 180_000);

  it('the progress saved in R2 outlives the job: after the retries run out, the next job continues it', async () => {
    const path = '/resume/later/initrd.img';
    const bytes = randomBytes(28 * MiB + 3);
    const cutAt = 3 * PART + MiB;
    // The cut, then every continuation within the job answered 503 until it gives up.
    const busy = { status: 503 } as const;
    upstream.set(path, bytes, { faults: [{ truncateAt: cutAt }, busy, busy, busy] });
    await fetchFile('boot/resume-later-initrd.img', path);
    const failed = await until('boot/resume-later-initrd.img', 'failed');
    expect(failed).toMatchObject({ state: 'failed', error: { code: 'upstream-status' } });
    expect(gets(path).map((r) => r.status)).toEqual([200, 503, 503, 503]);

    // A new job (a new Workflow instance, as a retried step would be) reads the saved parts and asks for the rest.
    await fetchFile('boot/resume-later-initrd.img', path);
    const ready = await until('boot/resume-later-initrd.img', 'ready');
    expect(ready).toMatchObject({ state: 'ready', sha256: sha256(bytes), size: bytes.byteLength });
    const last = gets(path).at(-1);
    expect(last).toMatchObject({ status: 206 });
    expect(last?.headers['range']).toBe(`bytes=${3 * PART}-`);
    expect(fileBytesServed(path)).toBe(bytes.byteLength + (cutAt - 3 * PART));
    expect(sha256(await blob(sha256(bytes)))).toBe(sha256(bytes));
  }, 180_000);
});
