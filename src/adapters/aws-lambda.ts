import type { Context } from 'aws-lambda';
import { createLambdaRuntime, isJobEvent } from '../runtime/lambda/runtime.js';
import { selfInvoker } from '../runtime/lambda/self-invoke.js';

/**
 * The AWS Lambda entry point (infra/aws): HTTP events (Function URL, API Gateway HTTP API) go to the Hono app;
 * `{pxecacheJob}` events, which this function sends itself for each fetch, run that fetch.
 */
let runtime: ReturnType<typeof createLambdaRuntime> | undefined;

export async function handler(event: unknown, context: Context): Promise<unknown> {
  const rt = await (runtime ??= createLambdaRuntime(process.env, selfInvoker(process.env)));
  if (isJobEvent(event)) return rt.job(event, context.getRemainingTimeInMillis());
  return rt.http(event as Parameters<typeof rt.http>[0], context as Parameters<typeof rt.http>[1]);
}
