import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../../src/core/errors.js';
import { keys } from '../../src/core/object-keys.js';
import { silentLogger, type UpstreamResponse } from '../../src/core/ports.js';
import type { ResumableJob, ResumePoint } from '../../src/core/resumable.js';
import { parseContentRange, strongEtag } from '../../src/runtime/workers/content-range.js';
import { workersSha256 } from '../../src/runtime/workers/hasher.js';
import { createResumableIngest, type Progress } from '../../src/runtime/workers/resumable-ingest.js';

const MiB = 1024 * 1024;
const PART = 5 * MiB;

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

async function sha(b: Uint8Array): Promise<string> {
  const h = workersSha256();
  h.update(b);
  return h.digest();
}

/** An upstream answer whose body is `body[from, cutAt)` in 256 KiB chunks, then a reset if `cutAt` is short. */
function answer(status: number, headers: Record<string, string>, body: Uint8Array, from = 0, cutAt = body.length) {
  async function* chunks() {
    for (let at = from; at < cutAt; at += 256 * 1024) yield body.slice(at, Math.min(cutAt, at + 256 * 1024));
    if (cutAt < body.length) throw new UpstreamError('reset', 'http://up/x', 'connection lost');
  }
  const r: UpstreamResponse = {
    status,
    header: (name) => headers[name],
    body: chunks(),
    discard: async () => undefined,
  };
  return r;
}

function job(name: string, response: UpstreamResponse, again: (from: ResumePoint | null) => UpstreamResponse) {
  const asked: (ResumePoint | null)[] = [];
  const j: ResumableJob = {
    name,
    url: 'http://up/x',
    response,
    newDataKey: () => keys.data(crypto.randomUUID()),
    again: async (from) => {
      asked.push(from);
      return again(from);
    },
    read: (r) => r.body,
  };
  return { job: j, asked };
}

const ingest = () =>
  createResumableIngest({
    bucket: env.BUCKET,
    hasher: workersSha256,
    logger: silentLogger,
    partSize: PART,
    maxResumes: 0,
  });

describe('resumable ingest on R2 (workerd)', () => {
  it('records each stored part; a later run continues from them and hashes the whole object read back', async () => {
    const file = bytes(2 * PART + 3 * MiB + 5, 1);
    const etag = '"v1"';
    const cl = { etag, 'content-length': String(file.length) };
    const first = job('boot/a', answer(200, cl, file, 0, 2 * PART + MiB), () => {
      throw new Error('not asked: no resumes left');
    });
    await expect(ingest().ingest(first.job)).rejects.toMatchObject({ code: 'reset' });
    const saved = (await (await env.BUCKET.get(keys.resume('boot/a')))!.json()) as Progress;
    // Two full parts stored and recorded; the megabyte after them is lost with the cut.
    expect(saved).toMatchObject({ offset: 2 * PART, etag, total: file.length, partSize: PART });
    expect(saved.parts.map((p) => p.partNumber)).toEqual([1, 2]);
    expect(await ingest().saved('boot/a', 'http://up/x')).toEqual({ offset: 2 * PART, etag });
    expect(await ingest().saved('boot/a', 'http://up/other')).toBeNull();

    const range = { etag, 'content-range': `bytes ${2 * PART}-${file.length - 1}/${file.length}` };
    const second = job('boot/a', answer(206, range, file, 2 * PART), () => {
      throw new Error('not asked');
    });
    const got = await ingest().ingest(second.job);
    expect(got).toMatchObject({ dataKey: saved.key, size: file.length, sha256: await sha(file) });
    const stored = await env.BUCKET.get(saved.key);
    expect(stored?.etag).toMatch(/-3$/);
    expect(await sha(new Uint8Array(await stored!.arrayBuffer()))).toBe(await sha(file));
    expect(await env.BUCKET.head(keys.resume('boot/a'))).toBeNull();
  });

  it('a 206 for another total or ETag is not continued: the saved upload is aborted and the file fetched whole', async () => {
    const old = bytes(2 * PART + 10, 2);
    const cl = { etag: '"old"', 'content-length': String(old.length) };
    const cut = job('boot/b', answer(200, cl, old, 0, PART + 10), () => {
      throw new Error('not asked');
    });
    await expect(ingest().ingest(cut.job)).rejects.toMatchObject({ code: 'reset' });
    const saved = (await (await env.BUCKET.get(keys.resume('boot/b')))!.json()) as Progress;
    expect(saved.offset).toBe(PART);

    const respun = bytes(PART + 77, 3);
    // Same ETag (a broken mirror), another total: not the same representation.
    const wrong = { etag: '"old"', 'content-range': `bytes ${PART}-${PART + 76}/${PART + 77}` };
    const whole = { etag: '"new"', 'content-length': String(respun.length) };
    const next = job('boot/b', answer(206, wrong, respun, PART), () => answer(200, whole, respun));
    const got = await ingest().ingest(next.job);
    expect(next.asked).toEqual([null]);
    expect(got).toMatchObject({ size: respun.length, sha256: await sha(respun), validators: { etag: '"new"' } });
    expect(got.dataKey).not.toBe(saved.key);
    expect(await env.BUCKET.head(keys.resume('boot/b'))).toBeNull();
    // The aborted upload can take no more parts.
    await expect(env.BUCKET.resumeMultipartUpload(saved.key, saved.uploadId).uploadPart(2, respun)).rejects.toThrow();
  });

  it('reads Content-Range and tells strong ETags from weak ones', () => {
    expect(parseContentRange('bytes 10-19/20')).toEqual({ start: 10, end: 19, total: 20 });
    expect(parseContentRange('bytes 10-19/*')).toEqual({ start: 10, end: 19, total: null });
    expect(parseContentRange('bytes 10-20/20')).toBeNull();
    expect(parseContentRange('bytes */20')).toBeNull();
    expect(parseContentRange(undefined)).toBeNull();
    expect(strongEtag('"abc"')).toBe('"abc"');
    expect(strongEtag('W/"abc"')).toBeNull();
    expect(strongEtag('abc')).toBeNull();
    expect(strongEtag(undefined)).toBeNull();
  });
});
