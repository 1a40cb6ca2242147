import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { Env } from '../../storage/s3-client.js';
import type { Invoker } from './runtime.js';

/**
 * Production's invoker: this same function, asynchronously (InvocationType Event: queued by Lambda, retried by it on
 * a crash), named by PXECACHE_SELF_FUNCTION (infra/aws sets it) or else the variable Lambda itself sets. The role needs lambda:InvokeFunction on the function.
 */
export function selfInvoker(env: Env): Invoker {
  const name = env['PXECACHE_SELF_FUNCTION'] ?? env['AWS_LAMBDA_FUNCTION_NAME'];
  const client = new LambdaClient({});
  return async (event) => {
    if (!name) throw new Error('AWS_LAMBDA_FUNCTION_NAME is not set: not running on Lambda');
    const payload = new TextEncoder().encode(JSON.stringify(event));
    await client.send(new InvokeCommand({ FunctionName: name, InvocationType: 'Event', Payload: payload }));
  };
}
