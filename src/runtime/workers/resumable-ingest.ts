import { IntegrityError, PxeError, StorageError, UpstreamError, describe } from '../../core/errors.js';
import { keys } from '../../core/object-keys.js';
import type { Hasher, HasherFactory, Logger, UpstreamResponse } from '../../core/ports.js';
import type { Ingested, ResumableIngest, ResumableJob, ResumePoint } from '../../core/resumable.js';
import { parseContentRange, strongEtag } from './content-range.js';

/**
 * Where a download stands, saved in R2 after every part (`names/<name>/~/resume.json`).
 *
 * Why one Workflow step with retries and this record, rather than several steps each returning its state: the job
 * (lease, conditional GET, download, recheck, publish, status) is the core's `runDispatched`, one call; cutting it
 * into steps would put the core's control flow into the Workflow class. A step's result is persisted only when it
 * returns, so progress inside the one step must be persisted by the step itself: this record, written after each
 * part is in R2, costs one small put per part (8 MiB). Whatever ends the step (an evicted isolate, a deploy, an
 * error), its retry, or the next job for the name, reads it and asks upstream for the rest.
 */
export interface Progress {
  readonly url: string;
  readonly key: string;
  readonly uploadId: string;
  readonly partSize: number;
  readonly parts: readonly R2UploadedPart[];
  /** Bytes stored in `parts`, all of them full parts: the next byte wanted from upstream. */
  readonly offset: number;
  /** The whole representation's length, when upstream said (Content-Length of a 200, Content-Range of a 206). */
  readonly total: number | null;
  /** Upstream's ETag. Only a strong one is continued; otherwise the upload is recorded only so it can be aborted. */
  readonly etag: string | null;
  readonly lastModified: string | null;
}

export interface ResumableIngestOptions {
  readonly bucket: R2Bucket;
  readonly hasher: HasherFactory;
  readonly logger: Logger;
  /** R2 multipart part size: memory is one part buffer (plus the chunk being copied). Default 8 MiB, minimum 5 MiB. */
  readonly partSize?: number;
  /** Continuations of one download within one run, after a cut (a reset, a 5xx, an R2 error). Default 3. */
  readonly maxResumes?: number;
}

const MiB = 1024 * 1024;

/**
 * Streams upstream into an R2 multipart upload of equal parts, one part buffer in memory, saving the upload id and
 * the finished parts after each one. After a cut it asks upstream for the rest with `Range` and `If-Range: <strong
 * ETag>`: a 206 whose ETag, start and total match continues the upload; anything else (a 200, a weak or absent or
 * changed ETag, another total) aborts it and starts over from byte 0, so one object never mixes two versions.
 * crypto.DigestStream's state cannot be saved, so a download that was resumed is hashed by reading the completed
 * object back (its size checked against upstream's length first); one that ran through is hashed on the way in.
 */
export function createResumableIngest(opts: ResumableIngestOptions): ResumableIngest {
  const { bucket, hasher, logger } = opts;
  const partSize = opts.partSize ?? 8 * MiB;
  const maxResumes = opts.maxResumes ?? 3;

  const load = async (name: string): Promise<Progress | null> => {
    const object = await bucket.get(keys.resume(name));
    return object === null ? null : ((await object.json()) as Progress);
  };
  const save = (name: string, p: Progress) => bucket.put(keys.resume(name), JSON.stringify(p));
  /** The progress each running job last recorded: where its own retry continues. */
  const recorded = new WeakMap<ResumableJob, Progress>();
  const drop = async (name: string, p: Progress | null): Promise<void> => {
    if (p?.uploadId)
      await bucket
        .resumeMultipartUpload(p.key, p.uploadId)
        .abort()
        .catch(() => undefined);
    await bucket.delete(keys.resume(name));
  };

  return {
    async saved(name, url) {
      const p = await load(name);
      const etag = strongEtag(p?.etag ?? undefined);
      if (p === null || etag === null || p.url !== url || p.offset === 0 || p.partSize !== partSize) return null;
      return { offset: p.offset, etag };
    },

    async ingest(job: ResumableJob): Promise<Ingested> {
      let progress = await load(job.name);
      let response: UpstreamResponse | null = job.response;
      // One part buffer for the whole run, taken at the first byte (a tiny boot file does not need 8 MiB).
      let buffer: Uint8Array | undefined;
      const part = () => (buffer ??= new Uint8Array(partSize));
      for (let resumes = 0; ; resumes++) {
        let cut: unknown;
        try {
          if (response === null) {
            const from: ResumePoint = {
              offset: (progress as Progress).offset,
              etag: strongEtag((progress as Progress).etag ?? undefined) ?? '',
            };
            response = await job.again(from);
          }
          const start = await startingPoint(job, response, progress);
          // Inline hashing covers every byte only when this run stores them all from byte 0.
          let hash: Hasher | null = null;
          if (start.kind === 'over') {
            if (progress !== null)
              logger.warn('saved download not continued; starting over', { name: job.name, why: start.why });
            await drop(job.name, progress);
            progress = null;
            // A 206 that does not fit: the whole current representation instead, from byte 0.
            response = start.response.status === 200 ? start.response : await restart(job, start.response);
            hash = hasher();
            progress = fresh(job, response, partSize);
          } else progress = start.progress;
          recorded.set(job, progress);
          return await finish(job, await pump(job, response, progress, part, hash), hash);
        } catch (err) {
          cut = err;
        }
        // Where the last recorded part left this run (`pump` and `finish` keep it current).
        progress = recorded.get(job) ?? progress;
        const resumable =
          transient(cut) && progress !== null && strongEtag(progress.etag ?? undefined) !== null && progress.offset > 0;
        if (!resumable) {
          await drop(job.name, progress).catch(() => undefined);
          throw cut;
        }
        // Out of tries: the saved progress stays for the step's retry or the next job (If-Range guards it).
        if (resumes >= maxResumes) throw cut;
        logger.warn('download cut off; asking upstream for the rest', {
          name: job.name,
          offset: progress?.offset,
          error: describe(cut),
        });
        response = null;
      }
    },
  };

  async function restart(job: ResumableJob, unfit: UpstreamResponse): Promise<UpstreamResponse> {
    await unfit.discard();
    const whole = await job.again(null);
    if (whole.status === 200) return whole;
    await whole.discard();
    throw upstreamStatus(job, whole);
  }

  /**
   * Reads `response` into one part buffer; every full part is uploaded, then recorded (in R2, and in `recorded` for
   * this run's own retry). Returns the progress at the body's end and the bytes of the last, unsent part.
   */
  async function pump(
    job: ResumableJob,
    response: UpstreamResponse,
    from: Progress,
    part: () => Uint8Array,
    hash: Hasher | null,
  ): Promise<{ progress: Progress; tail: Uint8Array }> {
    let progress = from;
    let fill = 0;
    let buffer: Uint8Array | undefined;
    for await (const chunk of job.read(response)) {
      buffer ??= part();
      hash?.update(chunk);
      for (let at = 0; at < chunk.byteLength;) {
        const n = Math.min(partSize - fill, chunk.byteLength - at);
        buffer.set(chunk.subarray(at, at + n), fill);
        fill += n;
        at += n;
        // Stored (and recorded) as soon as it is full: a cut loses only the bytes after the last full part.
        if (fill === partSize) {
          progress = await uploadPart(job, progress, buffer);
          recorded.set(job, progress);
          fill = 0;
        }
      }
    }
    return { progress, tail: buffer === undefined ? new Uint8Array(0) : buffer.subarray(0, fill) };
  }

  async function uploadPart(job: ResumableJob, p: Progress, part: Uint8Array): Promise<Progress> {
    let { uploadId } = p;
    if (!uploadId) uploadId = (await bucket.createMultipartUpload(p.key)).uploadId;
    const upload = bucket.resumeMultipartUpload(p.key, uploadId);
    const uploaded = await upload.uploadPart(p.parts.length + 1, part);
    const next: Progress = {
      ...p,
      uploadId,
      parts: [...p.parts, { partNumber: uploaded.partNumber, etag: uploaded.etag }],
      offset: p.offset + part.byteLength,
    };
    await save(job.name, next);
    return next;
  }

  async function finish(
    job: ResumableJob,
    { progress: end, tail }: { progress: Progress; tail: Uint8Array },
    hash: Hasher | null,
  ): Promise<Ingested> {
    const size = end.offset + tail.byteLength;
    const validators = { etag: end.etag, lastModified: end.lastModified };
    if (end.total !== null && size !== end.total)
      throw new IntegrityError(`[upstream] ${job.url}: bytes stored`, `${end.total}`, `${size}`);
    if (!end.uploadId) {
      // Shorter than a part: one plain put, and `hash` saw every byte (a resumed download has parts).
      await bucket.put(end.key, tail);
      return { dataKey: end.key, sha256: await (hash as Hasher).digest(), size, validators };
    }
    const upload = bucket.resumeMultipartUpload(end.key, end.uploadId);
    const parts = [...end.parts];
    if (tail.byteLength > 0) parts.push(await upload.uploadPart(parts.length + 1, tail));
    const object = await upload.complete(parts);
    // Completed: nothing left to continue, whatever happens next (the object is deleted if it fails its checks).
    recorded.set(job, { ...end, etag: null, uploadId: '' });
    await bucket.delete(keys.resume(job.name));
    try {
      if (object.size !== size)
        throw new IntegrityError(`[store:r2] ${end.key}: size of the completed upload`, `${size}`, `${object.size}`);
      const sha256 = hash ? await hash.digest() : await readBack(end.key, size);
      return { dataKey: end.key, sha256, size, validators };
    } catch (err) {
      await bucket.delete(end.key).catch(() => undefined);
      throw err;
    }
  }

  /** The sha256 of a completed object, read from R2 a chunk at a time (the hash of a resumed download). */
  async function readBack(key: string, size: number): Promise<string> {
    const object = await bucket.get(key);
    if (object === null) throw new StorageError('r2', 'GET', key, 'completed upload not found');
    const hash = hasher();
    let read = 0;
    const reader = object.body.getReader();
    for (let step = await reader.read(); !step.done; step = await reader.read()) {
      hash.update(step.value);
      read += step.value.byteLength;
    }
    if (read !== size) throw new IntegrityError(`[store:r2] ${key}: bytes read back`, `${size}`, `${read}`);
    return hash.digest();
  }
}

type Start =
  | { readonly kind: 'continue'; readonly progress: Progress }
  | { readonly kind: 'over'; readonly response: UpstreamResponse; readonly why: string };

/**
 * Whether `response` continues `saved` (a 206 for the same strong ETag from its offset, same total), or the download
 * starts over (a 200, or a 206 that does not fit). Any other status throws (a 5xx is a cut: asked again).
 */
async function startingPoint(job: ResumableJob, response: UpstreamResponse, saved: Progress | null): Promise<Start> {
  if (response.status === 200) return { kind: 'over', response, why: 'upstream sent the whole file (200)' };
  if (response.status !== 206) {
    await response.discard();
    throw upstreamStatus(job, response);
  }
  const range = parseContentRange(response.header('content-range'));
  const etag = strongEtag(response.header('etag'));
  const savedEtag = strongEtag(saved?.etag ?? undefined);
  const why =
    saved === null || saved.url !== job.url || savedEtag === null
      ? 'no saved download to continue'
      : etag === null || etag !== savedEtag
        ? `ETag ${response.header('etag') ?? '(none)'} is not the saved ${saved.etag}`
        : range === null || range.start !== saved.offset
          ? `Content-Range ${response.header('content-range') ?? '(none)'} does not start at ${saved.offset}`
          : saved.total !== null && range.total !== saved.total
            ? `total ${range.total ?? '*'} is not the saved ${saved.total}`
            : null;
  if (why !== null || saved === null) return { kind: 'over', response, why: why ?? '' };
  return { kind: 'continue', progress: { ...saved, total: saved.total ?? range?.total ?? null } };
}

function fresh(job: ResumableJob, response: UpstreamResponse, partSize: number): Progress {
  const length = response.header('content-length');
  return {
    url: job.url,
    key: job.newDataKey(),
    uploadId: '',
    partSize,
    parts: [],
    offset: 0,
    total: length !== undefined && /^\d+$/.test(length.trim()) ? Number(length.trim()) : null,
    etag: response.header('etag') ?? null,
    lastModified: response.header('last-modified') ?? null,
  };
}

function upstreamStatus(job: ResumableJob, response: UpstreamResponse): UpstreamError {
  return new UpstreamError('upstream-status', job.url, `status ${response.status}`, { status: response.status });
}

/** A cut the same representation can be continued after: the connection, a timeout, a busy upstream, R2. */
function transient(err: unknown): boolean {
  if (err instanceof StorageError) return true;
  if (err instanceof UpstreamError && err.code === 'upstream-status')
    return (err.status ?? 0) >= 500 || err.status === 429;
  if (err instanceof UpstreamError) return ['reset', 'truncated', 'timeout', 'connect'].includes(err.code);
  return !(err instanceof PxeError);
}
