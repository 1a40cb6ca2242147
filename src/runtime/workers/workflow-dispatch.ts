import type { DispatchedJob } from '../../core/fetcher.js';
import type { Logger } from '../../core/ports.js';

/**
 * Starts the Workflow instance that runs `job`, or joins it when it already exists. Its id is the job id, which
 * the job's lease names, so every caller that follows the lease waits on this one instance. Looked up first because
 * the two runtimes differ on a duplicate id: production throws `instance.already_exists`, local workerd returns
 * normally (and runs the instance once). A create racing another one for the same id is also a join.
 */
export async function startWorkflow(binding: Workflow<DispatchedJob>, job: DispatchedJob, logger: Logger) {
  const id = job.jobId;
  if (await exists(binding, id)) return;
  try {
    await binding.create({ id, params: job });
    logger.info('fetch workflow started', { name: job.name, workflow: id });
  } catch (err) {
    if (!/already[_ ]exists/i.test(String(err))) throw err;
    logger.info('fetch workflow joined', { name: job.name, workflow: id });
  }
}

async function exists(binding: Workflow<DispatchedJob>, id: string): Promise<boolean> {
  try {
    await binding.get(id);
    return true;
  } catch (err) {
    if (/not[_ ]found/i.test(String(err))) return false;
    throw err;
  }
}
