import { PreconditionFailedError } from './errors.js';
import { keys } from './object-keys.js';
import type { Clock } from './ports.js';
import { getJson, listAll, putJson, type ObjectStore } from '../storage/object-store.js';

/**
 * Cross-process coalescing: one fetch per name+URL at a time, across every process and instance sharing the store.
 * A lease is a create-only object `leases/<name>/<urlhash>/<epoch>`; its holder renews its expiry while it works and
 * deletes it when done. When a holder dies, its lease expires and the next caller takes over by creating epoch+1 with
 * a create-only write, so exactly one taker wins.
 */

export interface LeaseRecord {
  readonly owner: string;
  readonly jobId: string;
  readonly url: string;
  readonly expiresAt: number;
  /** Upstream has answered; the holder is only recording the result. Live, but a new caller starts a new fetch. */
  readonly closing?: boolean;
}

export interface Lease {
  readonly key: string;
  readonly record: LeaseRecord;
}

export type Acquired =
  { readonly kind: 'owner'; readonly lease: Lease } | { readonly kind: 'follower'; readonly lease: Lease };

export interface LeaseOptions {
  readonly store: ObjectStore;
  readonly clock: Clock;
  readonly ttlMs: number;
  readonly owner: string;
}

export async function acquireLease(
  opts: LeaseOptions,
  name: string,
  urlHash: string,
  url: string,
  jobId: string,
): Promise<Acquired> {
  for (;;) {
    const current = await newestLease(opts.store, name, urlHash);
    const live = current && current.record.expiresAt > opts.clock.now();
    if (current && live && !current.record.closing) return { kind: 'follower', lease: current };
    const epoch = current ? keys.epochFromLease(current.key) + 1 : 1;
    const key = keys.lease(name, urlHash, epoch);
    const record: LeaseRecord = { owner: opts.owner, jobId, url, expiresAt: opts.clock.now() + opts.ttlMs };
    try {
      await putJson(opts.store, key, record, { ifNoneMatch: '*' });
    } catch (err) {
      if (err instanceof PreconditionFailedError) continue;
      throw err;
    }
    // An expired lease we replaced is garbage now; a closing one is deleted by its holder when it is done.
    if (current && !live) await opts.store.delete(current.key);
    return { kind: 'owner', lease: { key, record } };
  }
}

export async function newestLease(store: ObjectStore, name: string, urlHash: string): Promise<Lease | null> {
  let newest: string | undefined;
  for await (const key of listAll(store, keys.leasePrefix(name, urlHash))) newest = key;
  if (!newest) return null;
  const record = await getJson<LeaseRecord>(store, newest);
  return record ? { key: newest, record } : null;
}

/** True when any fetch of `name` (whatever URL) holds a live lease. */
export async function hasLiveLease(store: ObjectStore, clock: Clock, name: string): Promise<boolean> {
  for await (const key of listAll(store, keys.leasesOfName(name))) {
    const record = await getJson<LeaseRecord>(store, key);
    if (record && record.expiresAt > clock.now()) return true;
  }
  return false;
}

/** Extends a held lease; returns false (and writes nothing) when it was taken over meanwhile. */
export async function renewLease(opts: LeaseOptions, lease: Lease): Promise<boolean> {
  const record = await getJson<LeaseRecord>(opts.store, lease.key);
  if (!record || record.jobId !== lease.record.jobId) return false;
  await putJson(opts.store, lease.key, { ...lease.record, expiresAt: opts.clock.now() + opts.ttlMs });
  return true;
}

/** Marks a held lease as closing (see LeaseRecord.closing), extending it so the bookkeeping has time to finish. */
export async function closeLease(opts: LeaseOptions, lease: Lease): Promise<void> {
  await putJson(opts.store, lease.key, { ...lease.record, closing: true, expiresAt: opts.clock.now() + opts.ttlMs });
}

export async function releaseLease(store: ObjectStore, lease: Lease): Promise<void> {
  await store.delete(lease.key);
}

/** A lease is over when it was released (deleted), replaced by a taker, or expired. */
export async function leaseEnded(store: ObjectStore, clock: Clock, lease: Lease): Promise<boolean> {
  const record = await getJson<LeaseRecord>(store, lease.key);
  return !record || record.jobId !== lease.record.jobId || record.expiresAt <= clock.now();
}

/**
 * Deletes leases that expired more than `graceMs` ago: a holder killed mid-job never releases its lease, and only a
 * later fetch of the same name and URL would replace it. Such a lease already counts as ended everywhere (status,
 * followers, takers); deleting it is what a taker does too, so a sweep racing a taker is harmless. Returns the count.
 */
export async function sweepExpiredLeases(store: ObjectStore, clock: Clock, graceMs: number): Promise<number> {
  let removed = 0;
  for await (const key of listAll(store, keys.leasesPrefix)) {
    const record = await getJson<LeaseRecord>(store, key);
    if (!record || record.expiresAt + graceMs > clock.now()) continue;
    await store.delete(key);
    removed++;
  }
  return removed;
}
