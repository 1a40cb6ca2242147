import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from 'cloudflare:workers';
import type { DispatchedJob } from '../../core/fetcher.js';
import type { FileStatus } from '../../core/records.js';
import { workersRuntime, type WorkersEnv } from './runtime.js';

/**
 * One fetch job (core/fetcher.ts `runDispatched`): upstream streamed into R2, verified, published, status written,
 * lease released. A failed job is a `failed` status (the step returns), as on Node. A step cut off mid-way (an
 * evicted isolate, a deploy) is run again by the platform: the job's download continues from its last stored part
 * (runtime/workers/resumable-ingest.ts keeps that progress in R2, since a step's state persists only when it returns).
 */
export class FetchWorkflow extends WorkflowEntrypoint<WorkersEnv, DispatchedJob> {
  override async run(event: WorkflowEvent<DispatchedJob>, step: WorkflowStep) {
    return step.do(
      'fetch',
      { retries: { limit: 3, delay: '10 seconds', backoff: 'exponential' }, timeout: '2 hours' },
      async () => {
        const { fetcher } = workersRuntime(this.env);
        const status: FileStatus = await fetcher.runDispatched(event.payload);
        // The catalog snapshot and any pending check times, before the isolate may go.
        await fetcher.flush();
        return { state: status.state, version: status.version, error: status.error };
      },
    );
  }
}
