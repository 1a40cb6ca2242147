import { PxeError, describe } from '../core/errors.js';
import { workersRuntime, type WorkersEnv } from '../runtime/workers/runtime.js';

export { FetchWorkflow } from '../runtime/workers/fetch-workflow.js';

/**
 * The Cloudflare Workers entry point (wrangler.toml `main`): the same Hono app as `pxecache serve`, on an R2 bucket,
 * with fetch jobs in a Workflow (FetchWorkflow) and a cron trigger for upkeep.
 */
export default {
  async fetch(request: Request, env: WorkersEnv, ctx: ExecutionContext): Promise<Response> {
    let runtime;
    try {
      runtime = workersRuntime(env);
    } catch (err) {
      // A bad variable or a missing secret: every request says which, instead of an opaque 1101 error page.
      console.error(JSON.stringify({ level: 'error', msg: 'pxecache is misconfigured', error: describe(err) }));
      const message = err instanceof PxeError ? err.message : 'internal error';
      return new Response(`pxecache is misconfigured: ${message}\n`, { status: 500 });
    }
    const response = await runtime.app.fetch(request, env, ctx);
    ctx.waitUntil(runtime.fetcher.flush());
    return response;
  },

  async scheduled(_event: ScheduledController, env: WorkersEnv, ctx: ExecutionContext): Promise<void> {
    const runtime = workersRuntime(env);
    ctx.waitUntil(
      runtime.maintain().catch((err: unknown) => runtime.logger.warn('upkeep failed', { error: describe(err) })),
    );
  },
} satisfies ExportedHandler<WorkersEnv>;
