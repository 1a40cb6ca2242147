import type { ObjectStore } from '../storage/object-store.js';
import { indexBlob } from './blobs.js';
import { verifyDownload } from './checksum-check.js';
import { redactUrl } from './redact.js';
import { PxeError, UpstreamError, describe } from './errors.js';
import type { Metrics } from './metrics.js';
import { keys } from './object-keys.js';
import type { Clock, HasherFactory, TransferProgress, UpstreamClient, UpstreamResponse } from './ports.js';
import { healedPointer, publish, type PublishResult } from './pointers.js';
import { versionOf, type PointerRecord, type StatusRecord, type VersionEntry } from './records.js';
import { upstreamGet, type Conditional } from './upstream-get.js';
import type { UrlPolicy } from './url-policy.js';
import type { Ingested, ResumableIngest, ResumePoint } from './resumable.js';

export interface JobDeps {
  readonly store: ObjectStore;
  readonly upstream: UpstreamClient;
  readonly hasher: HasherFactory;
  /** Streaming MD5, for media that publish only `MD5SUMS`; absent: those documents are not used (checksum-check.ts). */
  readonly md5?: HasherFactory;
  readonly clock: Clock;
  readonly newId: () => string;
  readonly policy: UrlPolicy;
  readonly maxRedirects: number;
  readonly keepVersions: number;
  readonly userAgent: string;
  readonly metrics?: Metrics;
  /** Longest one download may take (a trickle that never pauses long enough for the idle timeout). None: no limit. */
  readonly fetchTimeoutMs?: number;
  /** Downloads that continue where a cut-off one stopped (Workers); absent: every download starts at byte 0. */
  readonly resumable?: ResumableIngest;
  /**
   * Upstream changed for a published name: about to download its new bytes (core/respin-sets.ts). The job publishes
   * only once the promise settles (the rest of the set is then recorded `fetching`, so an agent holds the set).
   */
  readonly onUpstreamChange?: (name: string, basename: string, url: string) => Promise<void> | void;
  /** Each download's body bytes as they arrive (a 206's of its rest), for `pxecache fetch` to draw progress. */
  readonly onProgress?: TransferProgress;
}

export interface JobInput {
  readonly name: string;
  readonly basename: string;
  readonly url: URL;
  readonly startedAt: number;
  readonly signal?: AbortSignal;
}

export type JobOutcome =
  | { readonly kind: 'not-modified'; readonly current: PointerRecord }
  | { readonly kind: 'unchanged'; readonly current: PointerRecord; readonly conditional: Conditional }
  | { readonly kind: 'publish'; readonly result: PublishResult; readonly conditional: Conditional };

/** Downloads per job: the first, and one more when upstream changed during it (a respin caught mid-download). */
const MAX_DOWNLOADS = 2;

/**
 * One revalidation of one name against upstream: conditional GET (validators only when the URL is the one the
 * published bytes came from), stream -> count -> sha256 -> store, verify (against the medium's own checksum document
 * when it has one: checksum-check.ts), then publish with a create-only pointer write. A failure throws and leaves the
 * published pointer untouched; partial bytes are never published, and resumed only by an injected `resumable` ingest, for the same representation (a changed upstream always starts a fresh
 * version).
 *
 * A mirror respun while the download ran can hand out a file that is neither the old nor the new one (a mirror sync
 * replacing it mid-read): after the download, upstream is asked again with the download's own validators. A 304 (or
 * the same validators) confirms the bytes; anything newer discards them and the new answer is downloaded instead,
 * once: a second change fails the job (`upstream-changing`) and the previous version keeps serving.
 */
export async function runFetchJob(
  deps: JobDeps,
  input: JobInput,
  status: StatusRecord | null,
  answered?: UpstreamResponse,
): Promise<JobOutcome> {
  const current = await healedPointer(deps.store, input.name, new Date(deps.clock.now()).toISOString());
  const conditional = validatorsFor(redactUrl(input.url), current, status);
  // A download of this name cut off earlier (a Workflow step evicted, say) asks for its rest; the ingest checks
  // that the answer is the same representation (If-Range) and otherwise starts over.
  const saved = answered ? null : await deps.resumable?.saved(input.name, redactUrl(input.url));
  // `answered`: the caller's revalidation already has upstream's answer (a change): read it rather than ask again.
  let response = answered ?? (await get(deps, input, conditional, saved ?? undefined));
  if (response.status === 304 && conditional && current) {
    await response.discard();
    return { kind: 'not-modified', current };
  }
  // Changed: validators that no longer match, or another URL for the name (a 2xx without either tells nothing).
  const setAsked =
    current && response.status < 300 && (conditional || current.url !== redactUrl(input.url))
      ? deps.onUpstreamChange?.(input.name, input.basename, redactUrl(input.url))
      : undefined;
  let got: Ingested;
  for (let download = 1; ; download++) {
    got = await ingest(deps, input, response);
    const changed = await changedSince(deps, input, got.validators);
    if (!changed) break;
    await deps.store.delete(got.dataKey);
    deps.metrics?.inc('pxecache_upstream_respins_total');
    if (download >= MAX_DOWNLOADS) {
      await changed.discard();
      throw new UpstreamError(
        'upstream-changing',
        input.url.href,
        `changed during each of ${download} downloads (a mirror being synced?); nothing published, retried at the next request`,
      );
    }
    response = changed;
  }
  const { dataKey, sha256, size, validators } = got;
  if (current && current.sha256 === sha256) {
    await deps.store.delete(dataKey);
    return { kind: 'unchanged', current, conditional: validators };
  }
  // After the download is confirmed, so a document and a file respun together are compared as upstream now has them.
  const verifiedBy = await verifyDownload(deps, { url: input.url, sha256, dataKey, ...signalOf(input) }).catch(
    async (err: unknown) => {
      await deps.store.delete(dataKey);
      throw err;
    },
  );
  await setAsked;
  const key = await indexBlob(deps.store, sha256, size, dataKey);
  const entry: VersionEntry = {
    version: versionOf(sha256),
    sha256,
    size,
    url: redactUrl(input.url),
    fetchedAt: new Date(deps.clock.now()).toISOString(),
    basename: input.basename,
    key,
    ...(verifiedBy ? { verifiedBy } : {}),
  };
  const result = await publish(deps.store, {
    name: input.name,
    entry,
    etag: validators.etag,
    lastModified: validators.lastModified,
    startedAt: input.startedAt,
    keep: deps.keepVersions,
  });
  // Job start to pointer write: what a caller waits for a new version (`held` and lost races wrote no pointer).
  if (result.kind === 'published')
    deps.metrics?.observe('pxecache_publish_duration_seconds', (deps.clock.now() - input.startedAt) / 1000);
  return { kind: 'publish', result, conditional: validators };
}

function get(
  deps: JobDeps,
  input: JobInput,
  conditional: Conditional | null,
  range?: ResumePoint,
): Promise<UpstreamResponse> {
  return upstreamGet(deps.upstream, input.url, conditional, {
    maxRedirects: deps.maxRedirects,
    policy: deps.policy,
    userAgent: deps.userAgent,
    ...signalOf(input),
    ...(range ? { range } : {}),
  }).then((r) => r.response);
}

/** A 200's body into a new data object, counted against Content-Length and hashed on the way. */
async function ingest(deps: JobDeps, input: JobInput, response: UpstreamResponse): Promise<Ingested> {
  const resumable = deps.resumable;
  // A 206 only answers the Range a resumable ingest asked for (`saved`); it checks that answer itself.
  if (response.status !== 200 && !(resumable && response.status === 206)) {
    await response.discard();
    throw new UpstreamError('upstream-status', input.url.href, `status ${response.status}`, {
      status: response.status,
    });
  }
  const deadline = deps.fetchTimeoutMs === undefined ? Infinity : deps.clock.now() + deps.fetchTimeoutMs;
  if (resumable) {
    const url = redactUrl(input.url);
    return resumable
      .ingest({
        name: input.name,
        url,
        response,
        newDataKey: () => keys.data(deps.newId()),
        again: (from) => get(deps, input, null, from ?? undefined),
        read: (r) => counted(deps, input, r, deadline, () => undefined),
      })
      .catch((err: unknown) => {
        if (err instanceof PxeError) throw err;
        throw new UpstreamError('reset', input.url.href, `download failed: ${describe(err)}`, { cause: err });
      });
  }
  const validators: Conditional = {
    etag: response.header('etag') ?? null,
    lastModified: response.header('last-modified') ?? null,
  };
  const declared = parseContentLength(response.header('content-length'));
  const dataKey = keys.data(deps.newId());
  const hash = deps.hasher();
  let size = 0;
  try {
    // A known length lets a store stream it in one request (R2 needs one); the count above still checks it.
    const body = counted(deps, input, response, deadline, (chunk) => {
      size += chunk.byteLength;
      hash.update(chunk);
    });
    await deps.store.put(dataKey, body, declared === null ? {} : { length: declared });
  } catch (err) {
    if (err instanceof PxeError) throw err;
    throw new UpstreamError('reset', input.url.href, `body read failed after ${size} bytes: ${describe(err)}`, {
      cause: err,
    });
  }
  return { dataKey, sha256: await hash.digest(), size, validators };
}

/**
 * One response's body, each chunk counted against its Content-Length (a 206's is the rest) and the fetch deadline,
 * and passed to `seen` before it goes on; upstream bytes are counted in the metrics whatever happens.
 */
async function* counted(
  deps: JobDeps,
  input: JobInput,
  response: UpstreamResponse,
  deadline: number,
  seen: (chunk: Uint8Array) => void,
): AsyncIterable<Uint8Array> {
  const declared = parseContentLength(response.header('content-length'));
  let size = 0;
  deps.onProgress?.(input.name, 0, declared);
  try {
    for await (const chunk of response.body) {
      // Checked per chunk: a body that stops altogether is the idle timeout's, one that trickles on is this one's.
      if (deps.clock.now() > deadline) {
        const limit = `${(deps.fetchTimeoutMs ?? 0) / 1000} s`;
        throw new UpstreamError(
          'timeout',
          input.url.href,
          `download still running after ${limit} (fetch timeout), ${size} bytes read`,
        );
      }
      size += chunk.byteLength;
      if (declared !== null && size > declared)
        throw new UpstreamError('truncated', input.url.href, `body longer than Content-Length ${declared}`);
      seen(chunk);
      deps.onProgress?.(input.name, size, declared);
      yield chunk;
    }
    if (declared !== null && size !== declared)
      throw new UpstreamError('truncated', input.url.href, `body ended after ${size} of ${declared} bytes`);
  } catch (err) {
    // The connection lost (reset or closed) before the announced length: the file is truncated, whoever closed it.
    if (err instanceof UpstreamError && err.code === 'reset' && declared !== null && size < declared) {
      const why = `connection lost after ${size} of ${declared} bytes: ${describe(err)}`;
      throw new UpstreamError('truncated', input.url.href, why, { cause: err });
    }
    throw err;
  } finally {
    deps.metrics?.inc('pxecache_upstream_bytes_total', {}, size);
    deps.onProgress?.(input.name, size, declared, true);
  }
}

/**
 * Upstream's answer when it no longer matches `validators` (a 200 with others, whose body is the new file), or null
 * when it still does. Without validators there is nothing to compare: the download stands, as it always did.
 */
async function changedSince(deps: JobDeps, input: JobInput, validators: Conditional): Promise<UpstreamResponse | null> {
  if (!validators.etag && !validators.lastModified) return null;
  const again = await get(deps, input, validators);
  if (again.status === 304) {
    await again.discard();
    return null;
  }
  // A server that ignores conditional requests answers 200 again: the same validators mean the same file.
  const same = validators.etag
    ? again.header('etag') === validators.etag
    : again.header('last-modified') === validators.lastModified;
  if (again.status === 200 && !same) return again;
  await again.discard();
  if (again.status === 200) return null;
  throw new UpstreamError(
    'upstream-status',
    input.url.href,
    `status ${again.status} when checked again after the download; nothing published`,
    { status: again.status },
  );
}

/** The validators of what `url` last gave for the published bytes: null when there is nothing to revalidate against. */
export function validatorsFor(
  url: string,
  current: PointerRecord | null,
  status: StatusRecord | null,
): Conditional | null {
  if (!current) return null;
  const seen = status?.upstream;
  // While pinned (rollback.ts) the question is whether upstream moved since it was last seen, whatever bytes it gave
  // then (held, or the version rolled back from): those are stored already, so asking again must not download them.
  const matches = current.pinned || seen?.sha256 === current.sha256;
  if (seen && seen.url === url && matches && (seen.etag || seen.lastModified))
    return { etag: seen.etag, lastModified: seen.lastModified };
  if (current.url === url && (current.etag || current.lastModified))
    return { etag: current.etag, lastModified: current.lastModified };
  return null;
}

const signalOf = (input: JobInput) => (input.signal ? { signal: input.signal } : {});
/**
 * What a finished job's status records of upstream: the validators of the bytes it last gave, and while the name is
 * pinned the newer bytes it gave (`held`: stored and indexed, published by `unpin`). Bytes equal to the pinned ones
 * clear `held`: upstream went back to them.
 */
export function upstreamAfter(
  outcome: JobOutcome,
  url: string,
  previous: StatusRecord | null,
): Pick<StatusRecord, 'upstream' | 'held'> {
  const result = outcome.kind === 'publish' ? outcome.result : null;
  const record = outcome.kind === 'publish' ? outcome.result.record : outcome.current;
  // A superseded job's view of upstream is older than what the status holds.
  if (outcome.kind === 'not-modified' || (result?.kind === 'superseded' && record.pinned))
    return { upstream: previous?.upstream ?? null, held: record.pinned ? (previous?.held ?? null) : null };
  const { etag, lastModified } = outcome.conditional;
  if (result?.kind === 'held')
    return {
      upstream: { url, sha256: result.entry.sha256, etag, lastModified },
      held: { ...result.entry, etag, lastModified },
    };
  return { upstream: { url, sha256: record.sha256, etag, lastModified }, held: null };
}

function parseContentLength(value: string | undefined): number | null {
  if (value === undefined || !/^\d+$/.test(value.trim())) return null;
  return Number(value.trim());
}
