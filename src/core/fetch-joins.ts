import type { Metrics } from './metrics.js';
import type { Logger } from './ports.js';

/** What a fetch caller may add to its request: the id the HTTP layer gave it (http/request-id.ts), for the logs. */
export interface RequestIdentity {
  readonly requestId?: string;
}

/** `{ requestId }` when the request carries one: spread into log fields (absent, the field is left out). */
export const requestIdOf = (request: RequestIdentity): { requestId?: string } =>
  request.requestId === undefined ? {} : { requestId: request.requestId };

/**
 * A caller that joined a job already running rather than asking upstream itself (core/fetcher.ts): counted, and
 * logged with the caller's own request id next to the job's id, so a request that "did nothing" can be traced to the
 * job (and the request) that did the work.
 */
export function noteJoin(
  deps: { readonly logger: Logger; readonly metrics?: Metrics },
  via: 'process' | 'lease',
  request: RequestIdentity,
  job: { readonly name: string; readonly jobId: string | undefined },
): void {
  deps.metrics?.inc('pxecache_fetch_coalesced_total', { via });
  deps.logger.info('fetch joined', { name: job.name, jobId: job.jobId ?? null, via, ...requestIdOf(request) });
}
