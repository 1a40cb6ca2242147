import { indexBlob } from './blobs.js';
import { keys } from './object-keys.js';
import { publish } from './pointers.js';
import type { Clock, HasherFactory } from './ports.js';
import { versionOf, type PointerRecord, type StatusRecord, type VersionEntry } from './records.js';
import { putJson, type ObjectStore } from '../storage/object-store.js';

/**
 * Bytes that did not come from upstream (air-gapped seeding: `pxecache import`, docs/air-gap.md) put into a store as
 * a fetch would have put them: a fresh `data/<id>` object hashed on the way in, the content-addressed index, and a
 * pointer publication, so versions, sha256 and the agent's view are the same as for fetched bytes.
 */
export interface SeedDeps {
  readonly store: ObjectStore;
  readonly hasher: HasherFactory;
  readonly clock: Clock;
  readonly newId: () => string;
  readonly keepVersions: number;
}

export interface Staged {
  readonly dataKey: string;
  readonly sha256: string;
  readonly size: number;
}

/**
 * Streams `body` into a new data object, counting and hashing each chunk on the way (never holding it whole). With
 * `length`, the store is told the size up front and fails the put, leaving nothing, when the body yields another.
 */
export async function stageBytes(
  deps: SeedDeps,
  body: AsyncIterable<Uint8Array>,
  length?: number,
  seen?: (bytes: number) => void,
): Promise<Staged> {
  const dataKey = keys.data(deps.newId());
  const hash = deps.hasher();
  let size = 0;
  async function* counted() {
    for await (const chunk of body) {
      size += chunk.byteLength;
      hash.update(chunk);
      seen?.(chunk.byteLength);
      yield chunk;
    }
  }
  await deps.store.put(dataKey, counted(), length === undefined ? {} : { length });
  return { dataKey, sha256: await hash.digest(), size };
}

export interface Seed {
  readonly name: string;
  readonly basename: string;
  /** The upstream URL the bytes stand for: where the next revalidation goes. */
  readonly url: string;
  readonly staged: Staged;
  /** When the bytes came from upstream (a bundle says); default now. */
  readonly fetchedAt?: string;
  readonly verifiedBy?: VersionEntry['verifiedBy'];
  /** Upstream's validators for these bytes, when known (a bundle carries them); never a local file's mtime. */
  readonly etag: string | null;
  readonly lastModified: string | null;
}

/** `held`: the name is pinned by a rollback; the bytes are recorded as held, published by `unpin`. */
export type SeedOutcome = 'imported' | 'unchanged' | 'superseded' | 'held';

/**
 * Indexes the staged bytes and publishes them under the seed's name. The same bytes as the current version change
 * nothing (`unchanged`: the staged copy is dropped by the index, the pointer stays). A publication also writes a
 * `ready` status, so an earlier failed fetch attempt of an air-gapped site no longer shows, and records upstream's
 * validators when the seed has them, so the first revalidation is conditional.
 */
export async function publishSeed(
  deps: SeedDeps,
  seed: Seed,
): Promise<{ outcome: SeedOutcome; record: PointerRecord }> {
  const { sha256, size, dataKey } = seed.staged;
  const key = await indexBlob(deps.store, sha256, size, dataKey);
  const now = deps.clock.now();
  const entry: VersionEntry = {
    version: versionOf(sha256),
    sha256,
    size,
    url: seed.url,
    fetchedAt: seed.fetchedAt ?? new Date(now).toISOString(),
    basename: seed.basename,
    key,
    ...(seed.verifiedBy ? { verifiedBy: seed.verifiedBy } : {}),
  };
  const result = await publish(deps.store, {
    name: seed.name,
    entry,
    etag: seed.etag,
    lastModified: seed.lastModified,
    startedAt: now,
    keep: deps.keepVersions,
  });
  if (result.kind === 'already-current') return { outcome: 'unchanged', record: result.record };
  if (result.kind === 'superseded') return { outcome: 'superseded', record: result.record };
  const validated = seed.etag !== null || seed.lastModified !== null;
  const held = result.kind === 'held' ? { ...entry, etag: seed.etag, lastModified: seed.lastModified } : null;
  const status: StatusRecord = {
    name: seed.name,
    url: seed.url,
    state: 'ready',
    jobId: deps.newId(),
    startedAt: now,
    checkedAt: null,
    error: null,
    upstream: validated ? { url: seed.url, sha256, etag: seed.etag, lastModified: seed.lastModified } : null,
    held,
  };
  await putJson(deps.store, keys.status(seed.name), status);
  return { outcome: held ? 'held' : 'imported', record: result.record };
}
