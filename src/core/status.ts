import { hasLiveLease } from './leases.js';
import { keys } from './object-keys.js';
import { latestPointer } from './pointers.js';
import type { Clock } from './ports.js';
import type { ErrorInfo, FileState, FileStatus, PointerRecord, PublicVersion, StatusRecord } from './records.js';
import { getJson, type ObjectStore } from '../storage/object-store.js';

/**
 * The public status of one name: the last-writer-wins status record joined with the pointer log. A `fetching`
 * record whose lease is gone belongs to a fetcher that died mid-job: reported `failed` (`interrupted`) so that
 * nobody waits forever, while the published version keeps serving.
 */
export async function readStatus(store: ObjectStore, clock: Clock, name: string): Promise<FileStatus | null> {
  const [record, pointer] = await Promise.all([
    getJson<StatusRecord>(store, keys.status(name)),
    latestPointer(store, name),
  ]);
  if (!record && !pointer) return null;
  let state = record?.state ?? 'ready';
  let error = record?.error ?? null;
  if (record && state === 'fetching' && !(await hasLiveLease(store, clock, name))) {
    // The job may have written its result and released its lease between our two reads: look again.
    const again = await getJson<StatusRecord>(store, keys.status(name));
    if (again && (again.jobId !== record.jobId || again.state !== 'fetching')) return readStatus(store, clock, name);
    state = 'failed';
    error = { code: 'interrupted', message: 'the fetcher handling this download stopped before it finished' };
  }
  return composeStatus(name, record, pointer, state, error);
}

/** The public status from a status record and the latest pointer already read. */
export function composeStatus(
  name: string,
  record: StatusRecord | null,
  pointer: PointerRecord | null,
  state: FileState = record?.state ?? 'ready',
  error: ErrorInfo | null = record?.error ?? null,
): FileStatus {
  return {
    name,
    url: record?.url ?? pointer?.url ?? null,
    state,
    version: pointer?.version ?? null,
    sha256: pointer?.sha256 ?? null,
    size: pointer?.size ?? null,
    fetchedAt: pointer?.fetchedAt ?? null,
    checkedAt: record?.checkedAt ?? pointer?.fetchedAt ?? null,
    error: state === 'failed' ? error : null,
    generation: pointer?.generation ?? 0,
    versions: (pointer?.versions ?? []).map(publicVersion),
    verifiedBy: pointer?.verifiedBy ?? null,
    pinned: pointer?.pinned ?? null,
    held: pointer?.pinned && record?.held ? publicVersion(record.held) : null,
  };
}

const publicVersion = ({ version, sha256, size, url, fetchedAt }: PublicVersion): PublicVersion => ({
  version,
  sha256,
  size,
  url,
  fetchedAt,
});

/** A status record of `state` for a job, carrying over the upstream validators last seen and any held version. */
export function baseStatus(
  name: string,
  url: string,
  state: StatusRecord['state'],
  jobId: string,
  startedAt: number,
  checkedAt: string | null,
  previous: StatusRecord | null,
): StatusRecord {
  const upstream = previous?.upstream ?? null;
  return { name, url, state, jobId, startedAt, checkedAt, error: null, upstream, held: previous?.held ?? null };
}

/** What to answer for a name nothing is known about (a job whose bookkeeping failed before any record). */
export function unknownStatus(name: string, url: string): FileStatus {
  return {
    name,
    url,
    state: 'failed',
    version: null,
    sha256: null,
    size: null,
    fetchedAt: null,
    checkedAt: null,
    error: null,
    generation: 0,
    versions: [],
    verifiedBy: null,
    pinned: null,
    held: null,
  };
}
