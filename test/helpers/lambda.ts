/**
 * The Lambda fetcher in this process, as AWS runs it: `createLambdaRuntime` on an s3:// store (the Ceph RGW the test
 * run starts), HTTP requests turned into API Gateway v2 / Function URL events (payload 2.0, the shape both send), and
 * the asynchronous self-invocation replaced by one that calls the job handler in this process. `bridge` puts a real
 * HTTP listener in front, so the shared route suite reaches it like any server.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tokenListEntry } from '../../src/core/auth.js';
import { createLambdaRuntime } from '../../src/runtime/lambda/runtime.js';
import { sha256 } from './api.js';
import { createTestBucket, rgwClient, rgwEnv } from './rgw.js';

export const LAMBDA_TOKEN = 'pxc_lambda-admin';
const FIFTEEN_MINUTES = 15 * 60_000;

export interface V2Result {
  statusCode: number;
  headers?: Record<string, string>;
  cookies?: string[];
  body?: string;
  isBase64Encoded?: boolean;
}

/** An HTTP API (payload 2.0) event; `functionUrl` gives it the Function URL's domain and no stage. */
export function v2Event(
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string; query?: string; functionUrl?: boolean } = {},
) {
  const domainName = opts.functionUrl ? 'abcdefghij.lambda-url.eu-west-1.on.aws' : 'api.pxecache.example';
  const headers = { host: domainName, 'x-forwarded-proto': 'https', ...opts.headers };
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: opts.query ?? '',
    headers,
    requestContext: {
      accountId: opts.functionUrl ? 'anonymous' : '123456789012',
      apiId: opts.functionUrl ? 'abcdefghij' : 'api123',
      domainName,
      domainPrefix: opts.functionUrl ? 'abcdefghij' : 'api',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: crypto.randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    ...(opts.body !== undefined ? { body: Buffer.from(opts.body).toString('base64'), isBase64Encoded: true } : {}),
  };
}

export interface LambdaUnderTest {
  http(event: ReturnType<typeof v2Event>): Promise<V2Result>;
  /** Jobs started through the invoker, settled or not. */
  readonly jobs: Promise<unknown>[];
  close(): Promise<void>;
}

/**
 * A fresh bucket on RGW, one admin token (LAMBDA_TOKEN), and `vars` as more PXECACHE_* variables. Jobs run as if
 * their invocation had `jobRemainingMs` left (default the full 15 minutes).
 */
export async function startLambda(
  vars: Record<string, string> = {},
  opts: { jobRemainingMs?: number } = {},
): Promise<LambdaUnderTest> {
  const { bucket, cleanup } = await createTestBucket(rgwClient());
  const entry = tokenListEntry({ id: 'ops', sha256: sha256(LAMBDA_TOKEN), scopes: ['admin'] });
  const env = { ...rgwEnv(), PXECACHE_STORE: `s3://${bucket}/lambda`, PXECACHE_TOKENS: entry, ...vars };
  const jobs: Promise<unknown>[] = [];
  // Lambda queues an Event invocation and returns at once; the job then runs in its own invocation.
  const runtime = await createLambdaRuntime(env, async (event) => {
    const remaining = opts.jobRemainingMs ?? FIFTEEN_MINUTES;
    jobs.push(new Promise((r) => setImmediate(r)).then(() => runtime.job(event, remaining)));
  });
  return {
    http: (event) => runtime.http(event as never) as Promise<V2Result>,
    jobs,
    async close() {
      await Promise.allSettled(jobs);
      await cleanup();
    },
  };
}

/** A real HTTP listener on 127.0.0.1 whose requests reach the Lambda as Function URL events. */
export async function bridge(lambda: LambdaUnderTest): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://bridge');
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      const body = Buffer.concat(chunks);
      const event = v2Event(req.method ?? 'GET', url.pathname, {
        headers,
        query: url.search.slice(1),
        functionUrl: true,
        ...(body.byteLength > 0 ? { body: body.toString('latin1') } : {}),
      });
      if (body.byteLength > 0) Object.assign(event, { body: body.toString('base64'), isBase64Encoded: true });
      lambda.http(event).then(
        (out) => {
          res.writeHead(out.statusCode, { ...out.headers, ...(out.cookies ? { 'set-cookie': out.cookies } : {}) });
          res.end(out.body === undefined ? undefined : Buffer.from(out.body, out.isBase64Encoded ? 'base64' : 'utf8'));
        },
        (err: unknown) => res.writeHead(502).end(String(err)),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
