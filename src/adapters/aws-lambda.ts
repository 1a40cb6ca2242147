import type { Context } from 'aws-lambda';
import { PxeError, describe } from '../core/errors.js';
import { createLambdaRuntime, isJobEvent } from '../runtime/lambda/runtime.js';
import { selfInvoker } from '../runtime/lambda/self-invoke.js';

/**
 * The AWS Lambda entry point (infra/aws): HTTP events (Function URL, API Gateway HTTP API) go to the Hono app;
 * `{pxecacheJob}` events, which this function sends itself for each fetch, run that fetch.
 */
let runtime: ReturnType<typeof createLambdaRuntime> | undefined;

export async function handler(event: unknown, context: Context): Promise<unknown> {
  let rt;
  try {
    rt = await (runtime ??= createLambdaRuntime(process.env, selfInvoker(process.env)));
  } catch (err) {
    // A bad variable or a missing secret: every request says which, instead of Lambda's bare 502.
    console.error(JSON.stringify({ level: 'error', msg: 'pxecache is misconfigured', error: describe(err) }));
    if (isJobEvent(event)) throw err;
    const message = err instanceof PxeError ? err.message : 'internal error';
    return {
      statusCode: 500,
      headers: { 'content-type': 'text/plain' },
      body: `pxecache is misconfigured: ${message}\n`,
    };
  }
  if (isJobEvent(event)) return rt.job(event, context.getRemainingTimeInMillis());
  return rt.http(event as Parameters<typeof rt.http>[0], context as Parameters<typeof rt.http>[1]);
}
