import type { ObjectStore } from '../storage/object-store.js';
import { indexBlob } from './blobs.js';
import { redactUrl } from './redact.js';
import { PxeError, UpstreamError, describe } from './errors.js';
import { keys } from './object-keys.js';
import type { Clock, HasherFactory, UpstreamClient, UpstreamResponse } from './ports.js';
import { healedPointer, publish, type PublishResult } from './pointers.js';
import { versionOf, type PointerRecord, type StatusRecord, type VersionEntry } from './records.js';
import { upstreamGet, type Conditional } from './upstream-get.js';
import type { UrlPolicy } from './url-policy.js';

export interface JobDeps {
  readonly store: ObjectStore;
  readonly upstream: UpstreamClient;
  readonly hasher: HasherFactory;
  readonly clock: Clock;
  readonly newId: () => string;
  readonly policy: UrlPolicy;
  readonly maxRedirects: number;
  readonly keepVersions: number;
  readonly userAgent: string;
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

/**
 * One revalidation of one name against upstream: conditional GET (validators only when the URL is the one the
 * published bytes came from), stream -> count -> sha256 -> store, verify, then publish with a create-only pointer
 * write. A failure throws and leaves the published pointer untouched; partial bytes are never published and never
 * resumed (a changed upstream always starts a fresh version).
 */
export async function runFetchJob(
  deps: JobDeps,
  input: JobInput,
  status: StatusRecord | null,
  answered?: UpstreamResponse,
): Promise<JobOutcome> {
  const current = await healedPointer(deps.store, input.name, new Date(deps.clock.now()).toISOString());
  const conditional = validatorsFor(redactUrl(input.url), current, status);
  // `answered`: the caller's revalidation already has upstream's answer (a change): read it rather than ask again.
  const response =
    answered ??
    (
      await upstreamGet(deps.upstream, input.url, conditional, {
        maxRedirects: deps.maxRedirects,
        policy: deps.policy,
        userAgent: deps.userAgent,
        ...(input.signal ? { signal: input.signal } : {}),
      })
    ).response;
  if (response.status === 304 && conditional && current) {
    await response.discard();
    return { kind: 'not-modified', current };
  }
  if (response.status !== 200) {
    await response.discard();
    throw new UpstreamError('upstream-status', input.url.href, `status ${response.status}`, {
      status: response.status,
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
  async function* counted(): AsyncIterable<Uint8Array> {
    for await (const chunk of response.body) {
      size += chunk.byteLength;
      if (declared !== null && size > declared)
        throw new UpstreamError('truncated', input.url.href, `body longer than Content-Length ${declared}`);
      hash.update(chunk);
      yield chunk;
    }
    if (declared !== null && size !== declared)
      throw new UpstreamError('truncated', input.url.href, `body ended after ${size} of ${declared} bytes`);
  }
  try {
    await deps.store.put(dataKey, counted());
  } catch (err) {
    if (err instanceof PxeError) throw err;
    throw new UpstreamError('reset', input.url.href, `body read failed after ${size} bytes: ${describe(err)}`, {
      cause: err,
    });
  }
  const sha256 = hash.digest();
  if (current && current.sha256 === sha256) {
    await deps.store.delete(dataKey);
    return { kind: 'unchanged', current, conditional: validators };
  }
  const key = await indexBlob(deps.store, sha256, size, dataKey);
  const entry: VersionEntry = {
    version: versionOf(sha256),
    sha256,
    size,
    url: redactUrl(input.url),
    fetchedAt: new Date(deps.clock.now()).toISOString(),
    basename: input.basename,
    key,
  };
  const result = await publish(deps.store, {
    name: input.name,
    entry,
    etag: validators.etag,
    lastModified: validators.lastModified,
    startedAt: input.startedAt,
    keep: deps.keepVersions,
  });
  return { kind: 'publish', result, conditional: validators };
}

/** The validators of what `url` last gave for the published bytes: null when there is nothing to revalidate against. */
export function validatorsFor(
  url: string,
  current: PointerRecord | null,
  status: StatusRecord | null,
): Conditional | null {
  if (!current) return null;
  const seen = status?.upstream;
  if (seen && seen.url === url && seen.sha256 === current.sha256 && (seen.etag || seen.lastModified))
    return { etag: seen.etag, lastModified: seen.lastModified };
  if (current.url === url && (current.etag || current.lastModified))
    return { etag: current.etag, lastModified: current.lastModified };
  return null;
}

function parseContentLength(value: string | undefined): number | null {
  if (value === undefined || !/^\d+$/.test(value.trim())) return null;
  return Number(value.trim());
}
