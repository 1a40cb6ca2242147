import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from 'cloudflare:workers';
import type { DispatchedJob } from '../../core/fetcher.js';
import type { FileStatus } from '../../core/records.js';
import { workersRuntime, type WorkersEnv } from './runtime.js';

/**
 * One fetch job (core/fetcher.ts `runDispatched`): upstream streamed into R2, verified, published, status written,
 * lease released. A step is not retried by the platform: a failed job is a `failed` status and the next request
 * revalidates, as on Node; a step cut off mid-way leaves its lease to expire, and the next caller takes over.
 */
export class FetchWorkflow extends WorkflowEntrypoint<WorkersEnv, DispatchedJob> {
  override async run(event: WorkflowEvent<DispatchedJob>, step: WorkflowStep) {
    return step.do('fetch', { retries: { limit: 0, delay: 0 }, timeout: '2 hours' }, async () => {
      const { fetcher } = workersRuntime(this.env);
      const status: FileStatus = await fetcher.runDispatched(event.payload);
      // The catalog snapshot and any pending check times, before the isolate may go.
      await fetcher.flush();
      return { state: status.state, version: status.version, error: status.error };
    });
  }
}
