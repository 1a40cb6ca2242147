import { createChangeSignal, type ChangeSignal } from './changes.js';
import { createCheckTimes } from './check-times.js';
import { PxeError, describe, errorInfo } from './errors.js';
import { assertNoDirectoryCollision, createTargetResolver, hashUrl, type Target } from './fetch-target.js';
import type { FetchRequest } from './fetch-target.js';
import { runFetchJob, upstreamAfter, validatorsFor, type JobDeps, type JobOutcome } from './fetch-job.js';
import {
  acquireLease,
  closeLease,
  leaseEnded,
  releaseLease,
  renewLease,
  type Lease,
  type LeaseOptions,
} from './leases.js';
import { keys } from './object-keys.js';
import { healedPointer } from './pointers.js';
import { sleep, type Logger, type UpstreamResponse } from './ports.js';
import type { ErrorInfo, FileStatus, PointerRecord, StatusRecord } from './records.js';
import type { CatalogRefresher } from './catalog-refresher.js';
import { countNotModified, countOutcome } from './metrics.js';
import { noteJoin, requestIdOf } from './fetch-joins.js';
import { redactUrl } from './redact.js';
import { withRespinSets } from './respin-sets.js';
import { baseStatus, composeStatus, readStatus, unknownStatus } from './status.js';
import { upstreamGet } from './upstream-get.js';
import { getJson, putJson } from '../storage/object-store.js';

export type { FetchRequest };

export interface FetcherDeps extends JobDeps {
  readonly logger: Logger;
  /** Identifies this process in leases (host:pid:random on Node). */
  readonly instanceId: string;
  readonly leaseTtlMs: number;
  /** How often a follower in another process looks at the lease it waits on. */
  readonly followPollMs: number;
  /** Fired on every publication; shared with boot configs so one long-poll wakes for both. */
  readonly changes?: ChangeSignal;
  /** How long the `checkedAt` of unchanged revalidations may wait to be written in one batch. Default 1000 ms. */
  readonly checkBatchMs?: number;
  /** Told of every publication, so agents' first syncs read one snapshot (core/catalog-refresher.ts). */
  readonly catalog?: CatalogRefresher;
  /**
   * Where the jobs this process leads run. Absent: here (Node). On Workers an HTTP invocation ends 30 s after its
   * response, so the job goes to a Workflow, which calls `runDispatched`; its lease and `fetching` record exist
   * before it is dispatched, and this process then waits on the lease like any other caller.
   */
  readonly dispatch?: (job: DispatchedJob) => Promise<void>;
}

/** A job whose lease this process took, handed to another runner; JSON, so it can cross into a Workflow. */
export interface DispatchedJob {
  readonly lease: Lease;
  readonly name: string;
  readonly basename: string;
  readonly url: string;
  readonly startedAt: number;
  readonly jobId: string;
  readonly previous: StatusRecord | null;
}

export interface Submitted {
  /** Status once the job is accepted: its lease is held (or joined) and its `fetching` record exists. */
  readonly accepted: FileStatus;
  /** Settles with the final status; never rejects (failures are a `failed` status). */
  readonly done: Promise<FileStatus>;
  /**
   * Settles once this process has done its own part of the call: a revalidation has upstream's answer, a job has
   * been handed to its runner (`dispatch`), or, for a job running here, with `done`. A runtime that ends or freezes
   * after the response (Workers' waitUntil, Lambda) keeps the call alive until then, not for the whole download.
   */
  readonly started: Promise<unknown>;
  /** The job started or joined (absent: a lease-free revalidation, or an nfs no-op). */
  readonly jobId?: string;
}

export interface Fetcher {
  /** Validates (throws InputError/ConflictError, changing nothing), then starts or joins the fetch. */
  submit(request: FetchRequest): Promise<Submitted>;
  status(name: string): Promise<FileStatus | null>;
  /** Resolves when any job of this process publishes (catalog long-poll wake-up). */
  nextPublish(signal?: AbortSignal): Promise<void>;
  /** Writes the revalidation times still pending and the catalog snapshot (before shutdown). */
  flush(): Promise<void>;
  /** Runs a job another process dispatched (`FetcherDeps.dispatch`) to its end: publish, status, lease released. */
  runDispatched(job: DispatchedJob): Promise<FileStatus>;
}

export function createFetcher(deps: FetcherDeps): Fetcher {
  deps = withRespinSets(deps, (request) => submit(request));
  const running = new Map<string, Promise<Submitted>>();
  const leaseOpts: LeaseOptions = {
    store: deps.store,
    clock: deps.clock,
    ttlMs: deps.leaseTtlMs,
    owner: deps.instanceId,
  };
  const changes = deps.changes ?? createChangeSignal();
  const checkTimes = createCheckTimes(deps.store, deps.logger, deps.checkBatchMs ?? 1000);
  const recent = new Map<string, { previous: StatusRecord; current: PointerRecord; until: number }>();

  const resolveTarget = createTargetResolver(deps.policy, deps.store.maxKeyBytes);
  const checkDirectoryCollision = (name: string) => assertNoDirectoryCollision(deps.store, name);

  async function writeStatus(record: StatusRecord) {
    checkTimes.forget(record.name);
    recent.delete(record.name);
    await putJson(deps.store, keys.status(record.name), record);
  }

  async function submit(request: FetchRequest): Promise<Submitted> {
    const target = resolveTarget(request);
    const jobKey = `${target.name}\u0000${target.url.href}`;
    // Checked and set with no await in between: concurrent callers in this process share one promise.
    const joined = running.get(jobKey);
    if (joined) return joined.then((s) => (noteJoin(deps, 'process', request, { ...target, jobId: s.jobId }), s));
    const started = start(target, request, jobKey);
    running.set(jobKey, started);
    const forget = () => {
      if (running.get(jobKey) === started) running.delete(jobKey);
    };
    // Dispatched: joined through its lease from now on (kept here, it was joined after it had ended elsewhere).
    started.then((s) => (deps.dispatch ? s.started : s.done).finally(forget), forget);
    return started;
  }

  async function start(
    target: Target,
    request: FetchRequest,
    jobKey: string,
    answered?: UpstreamResponse | null,
  ): Promise<Submitted> {
    try {
      return await startJob(target, request, jobKey, answered);
    } catch (err) {
      await answered?.discard();
      throw err;
    }
  }

  /** `answered`: upstream's answer to a revalidation that found a change (the job reads it instead of asking again). */
  async function startJob(
    target: Target,
    request: FetchRequest,
    jobKey: string,
    answered: UpstreamResponse | null | undefined,
  ): Promise<Submitted> {
    if (answered === undefined && target.kind !== 'nfs') {
      const basis = await readyBasis(target.name);
      if (basis) {
        const revalidating = revalidate(target, request, jobKey, basis.previous, basis.current);
        if (revalidating) return revalidating;
      }
    }
    const previous = await getJson<StatusRecord>(deps.store, keys.status(target.name));
    // A published name passed this check when it was first fetched (and `answered` comes from revalidating one).
    if (answered === undefined) await checkDirectoryCollision(target.name);
    const now = deps.clock.now();
    if (target.kind === 'nfs') {
      // smart-proxy records nfs media as a no-op: the installer mounts them, nothing is downloaded.
      const checkedAt = new Date(now).toISOString();
      await writeStatus(
        baseStatus(target.name, redactUrl(target.url), 'nfs-noop', deps.newId(), now, checkedAt, previous),
      );
      const status = await mustStatus(target.name);
      return { accepted: status, done: Promise.resolve(status), started: Promise.resolve() };
    }
    const jobId = deps.newId();
    const urlHash = await hashUrl(deps.hasher, target.url.href);
    const acquired = await acquireLease(leaseOpts, target.name, urlHash, redactUrl(target.url), jobId);
    if (acquired.kind === 'follower') {
      await answered?.discard();
      noteJoin(deps, 'lease', request, { name: target.name, jobId: acquired.lease.record.jobId });
      // The holder may not have written its `fetching` record yet (it takes the lease first): answer for it.
      const known = await readStatus(deps.store, deps.clock, target.name);
      const accepted: FileStatus = {
        ...(known ?? unknownStatus(target.name, redactUrl(target.url))),
        state: 'fetching',
        error: null,
      };
      const done = settled(target, follow(acquired.lease, request));
      return { accepted, done, started: Promise.resolve(), jobId: acquired.lease.record.jobId };
    }
    const checkedAt = previous?.checkedAt ?? null;
    await writeStatus(baseStatus(target.name, redactUrl(target.url), 'fetching', jobId, now, checkedAt, previous));
    const accepted = await mustStatus(target.name);
    const job = { ...target, startedAt: now, jobId, jobKey, ...requestIdOf(request) };
    if (!deps.dispatch) {
      const done = settled(target, lead(acquired.lease, job, previous, answered));
      return { accepted, done, started: done, jobId };
    }
    // The runner asks upstream itself: an answer cannot cross into it.
    await answered?.discard();
    const { lease } = acquired;
    const { name, basename } = target;
    await deps
      .dispatch({ lease, name, basename, url: target.url.href, startedAt: now, jobId, previous })
      .catch(async (err: unknown) => {
        // Nothing will run the job: say so in its status and free the name for the next caller, then refuse.
        await finish(job, previous, null, errorInfo(err));
        await releaseLease(deps.store, lease);
        throw err;
      });
    return { accepted, done: settled(target, follow(lease, request)), started: Promise.resolve(), jobId };
  }

  /**
   * What a lease-free revalidation starts from: a ready name's status record and latest pointer, read at most once a
   * second per name (Foreman and many sites ask about the same files). Stale for that long when another process
   * writes them, which costs nothing wrong: older validators make upstream answer 200, and that answer goes the full
   * way, which reads everything afresh. This process's own writes drop the entry.
   */
  async function readyBasis(name: string): Promise<{ previous: StatusRecord; current: PointerRecord } | null> {
    const now = deps.clock.now();
    const known = recent.get(name);
    if (known && known.until > now) return known;
    const previous = await getJson<StatusRecord>(deps.store, keys.status(name));
    if (previous?.state !== 'ready') return null;
    const current = await healedPointer(deps.store, name, new Date(now).toISOString());
    if (!current) return null;
    if (recent.size >= 4096) recent.clear();
    const basis = { previous, current, until: now + 1000 };
    recent.set(name, basis);
    return basis;
  }

  /**
   * The common case, a ready name whose upstream has not changed, without a lease or a status write: one conditional
   * GET, and on 304 the new `checkedAt` joins the next batch. Any other answer goes the full way (lease, `fetching`,
   * the job), which reads that same answer; a request that failed is asked again by the job, which records the error.
   */
  function revalidate(
    target: Target,
    request: FetchRequest,
    jobKey: string,
    previous: StatusRecord,
    current: PointerRecord,
  ): Submitted | null {
    const conditional = validatorsFor(redactUrl(target.url), current, previous);
    if (!conditional) return null;
    // Until upstream answers, this process reports the name `fetching` (as if a re-fetch had started: it may turn
    // into one), so a caller polling the status after its 200 never takes the old state for the end of its call.
    const unmark = checkTimes.begin(target.name);
    let answered!: () => void;
    const started = new Promise<void>((resolve) => (answered = resolve));
    const check = async (): Promise<FileStatus> => {
      const answer = await upstreamGet(deps.upstream, target.url, conditional, {
        maxRedirects: deps.maxRedirects,
        policy: deps.policy,
        userAgent: deps.userAgent,
      }).catch(() => null);
      if (answer?.response.status === 304) {
        await answer.response.discard();
        countNotModified(deps.metrics);
        checkTimes.record(target.name, previous, new Date(deps.clock.now()).toISOString());
        unmark();
        answered();
        return checkTimes.overlay(composeStatus(target.name, previous, current));
      }
      // Unmarked once the job's own `fetching` record exists (or the job that holds the lease has one).
      const full = await start(target, request, jobKey, answer?.response ?? null).finally(unmark);
      void full.started.then(answered, answered);
      return full.done;
    };
    const done = settled(target, check());
    void done.finally(answered);
    return { accepted: checkTimes.overlay(composeStatus(target.name, previous, current)), done, started };
  }

  async function lead(
    lease: Lease,
    job: Omit<Target, 'kind'> & { startedAt: number; jobId: string; jobKey: string; requestId?: string },
    previous: StatusRecord | null,
    answered: UpstreamResponse | null | undefined,
  ): Promise<FileStatus> {
    const renew = setInterval(
      () => {
        renewLease(leaseOpts, lease).catch((err: unknown) =>
          deps.logger.warn('lease renewal failed', { err: describe(err) }),
        );
      },
      Math.max(100, deps.leaseTtlMs / 3),
    );
    const log = { name: job.name, url: redactUrl(job.url), jobId: job.jobId, ...requestIdOf(job) };
    deps.logger.info('fetch started', log);
    let outcome: JobOutcome | null = null;
    let error: ErrorInfo | null = null;
    try {
      outcome = await runFetchJob(deps, job, previous, answered ?? undefined);
    } catch (err) {
      error = errorInfo(err);
      deps.logger.warn('fetch failed', { ...log, code: error.code, error: error.message });
    } finally {
      clearInterval(renew);
    }
    if (deps.metrics) countOutcome(deps.metrics, outcome, error);
    // Upstream has answered: from now on a new caller must revalidate again rather than join this job, so the job
    // leaves the in-process table and its lease says "closing" (still live for status, no longer joinable).
    running.delete(job.jobKey);
    await closeLease(leaseOpts, lease).catch((err: unknown) =>
      deps.logger.warn('lease close failed', { ...log, err: describe(err) }),
    );
    try {
      await finish(job, previous, outcome, error);
    } finally {
      await releaseLease(deps.store, lease).catch((err: unknown) =>
        deps.logger.warn('lease release failed; it will expire', { ...log, err: describe(err) }),
      );
    }
    if (outcome?.kind === 'publish' && outcome.result.kind === 'held')
      deps.logger.info('held, not published: the name is pinned', { ...log, version: outcome.result.entry.version });
    if (outcome?.kind === 'publish' && outcome.result.kind === 'published') {
      deps.logger.info('published', {
        ...log,
        version: outcome.result.record.version,
        generation: outcome.result.record.generation,
      });
      changes.fire();
      deps.catalog?.touch();
    }
    return mustStatus(job.name);
  }

  async function finish(
    job: { name: string; url: URL; startedAt: number; jobId: string },
    previous: StatusRecord | null,
    outcome: JobOutcome | null,
    error: ErrorInfo | null,
  ) {
    const now = new Date(deps.clock.now()).toISOString();
    const latest = await getJson<StatusRecord>(deps.store, keys.status(job.name));
    // Another job (a newer URL for this name) took over the status meanwhile: its record wins.
    if (latest && latest.jobId !== job.jobId && latest.startedAt > job.startedAt) return;
    const base = baseStatus(
      job.name,
      redactUrl(job.url),
      error ? 'failed' : 'ready',
      job.jobId,
      job.startedAt,
      now,
      previous,
    );
    if (error || !outcome) {
      await writeStatus({ ...base, checkedAt: previous?.checkedAt ?? null, error });
      return;
    }
    await writeStatus({ ...base, ...upstreamAfter(outcome, redactUrl(job.url), previous) });
  }

  /** Wait for a job held by another process; take over if its holder dies (the lease expires). */
  async function follow(lease: Lease, request: FetchRequest): Promise<FileStatus> {
    for (;;) {
      await sleep(deps.followPollMs);
      if (!(await leaseEnded(deps.store, deps.clock, lease))) continue;
      const record = await getJson<{ jobId: string; expiresAt: number }>(deps.store, lease.key);
      if (record && record.expiresAt <= deps.clock.now()) {
        deps.logger.warn('lease holder stopped renewing; taking over', { lease: lease.key });
        // Straight to start(): this follower is itself the running entry for the job key.
        const target = resolveTarget(request);
        const again = await start(target, request, `${target.name}\u0000${target.url.href}`);
        return again.done;
      }
      return mustStatus(resolveTarget(request).name);
    }
  }

  /** `done` never rejects: a failure of the bookkeeping itself (store down) is still a `failed` status. */
  function settled(target: { name: string; url: URL }, job: Promise<FileStatus>): Promise<FileStatus> {
    return job.catch(async (err: unknown) => {
      const error = errorInfo(err);
      deps.logger.error('fetch bookkeeping failed', { name: target.name, ...error });
      const known = await readStatus(deps.store, deps.clock, target.name).catch(() => null);
      return { ...(known ?? unknownStatus(target.name, redactUrl(target.url))), state: 'failed', error };
    });
  }

  async function mustStatus(name: string): Promise<FileStatus> {
    const status = await readStatus(deps.store, deps.clock, name);
    if (!status) throw new PxeError('internal', `status of ${name} vanished`);
    return checkTimes.overlay(status);
  }

  return {
    submit,
    status: async (name) => {
      const status = await readStatus(deps.store, deps.clock, name);
      return status && checkTimes.overlay(status);
    },
    nextPublish: (signal) => changes.next(signal),
    flush: () => checkTimes.flush().then(() => deps.catalog?.flush()),
    runDispatched: (job) => {
      const url = new URL(job.url);
      const target = { name: job.name, url };
      const jobKey = `${job.name}\u0000${url.href}`;
      return settled(target, lead(job.lease, { ...job, url, jobKey }, job.previous, undefined));
    },
  };
}
