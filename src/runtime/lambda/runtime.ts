import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { handle } from 'hono/aws-lambda';
import type { Context } from 'hono';
import { commonNameOf, hostedAuth } from '../../core/auth.js';
import {
  optionsFromVariables,
  parseConfig,
  serveSchema,
  variableNamed,
  withVariableNames,
  type ServeConfig,
} from '../../core/config.js';
import { ConfigError } from '../../core/errors.js';
import type { DispatchedJob } from '../../core/fetcher.js';
import type { Logger } from '../../core/ports.js';
import type { FileStatus } from '../../core/records.js';
import { parseSites } from '../../core/sites.js';
import { createApp } from '../../http/app.js';
import { createS3ClientFromEnv, type Env } from '../../storage/s3-client.js';
import { openStore } from '../../storage/store-url.js';
import { createNodeAppDeps } from '../node/app-deps.js';
import { createNodeLogger } from '../node/logger.js';
import { s3TimeoutsOf } from '../node/writer-store.js';

/** The payload of the asynchronous invocation that runs one fetch job. */
export interface JobEvent {
  readonly pxecacheJob: DispatchedJob;
}
export const isJobEvent = (event: unknown): event is JobEvent =>
  typeof event === 'object' && event !== null && 'pxecacheJob' in event;

/** Starts another invocation of this function for `job` and returns once it is queued (InvocationType Event). */
export type Invoker = (event: JobEvent) => Promise<void>;

/** Lambda ends an invocation at 15 minutes: a job stops this long before, to record its failure itself. */
const END_MARGIN_MS = 20_000;
/** Work a request started (a revalidation's conditional GET) gets this long before the answer goes and Lambda freezes. */
const BACKGROUND_GRACE_MS = 3_000;
/** Presigned blob URLs live this long: an agent starts its download within it, and S3 serves it to the end. */
const PRESIGN_SECONDS = 900;

/**
 * The app on AWS Lambda: the `serve` options from `PXECACHE_*` variables, an s3:// store, fetch jobs in another
 * invocation (`invoke`), blobs answered with a 302 to a presigned S3 URL. Built once per execution environment.
 */
export async function createLambdaRuntime(env: Env, invoke: Invoker, logger?: Logger) {
  const config = lambdaConfig(env);
  const auth = lambdaAuth(config);
  const log = logger ?? createNodeLogger({ level: config['log-level'] });
  const client = createS3ClientFromEnv(env, s3TimeoutsOf(config));
  const { bucket, prefix } = s3Location(config.store);
  // No create-only probe at each cold start: AWS S3 honours If-None-Match (the deploy guide says to use it).
  const { store } = await openStore(config.store, 'store', { s3Client: client, probe: false, env }).catch(
    (err: unknown) => {
      throw variableNamed(err);
    },
  );
  const pending = new Set<Promise<unknown>>();
  const { deps } = createNodeAppDeps({
    store,
    settings: config,
    logger: log,
    sites: parseSites(config.sites, config['server-name']),
    auth,
    httpEnabled: false,
    httpsEnabled: true,
    hooks: {
      dispatch: (job) => invoke({ pxecacheJob: job }),
      background: (_c, work) => {
        pending.add(work);
        void work.finally(() => pending.delete(work));
      },
      remoteAddress: (c) => lambdaRequest(c)?.http?.sourceIp,
      // API Gateway's mutual TLS (a custom domain with a truststore) verified it; a Function URL has none.
      clientCertificate: (c) => {
        const dn = lambdaRequest(c)?.authentication?.clientCert?.subjectDN;
        return dn === undefined ? null : { cn: commonNameOf(dn) };
      },
      blobRedirect: (key) =>
        getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: prefix + key }), {
          expiresIn: PRESIGN_SECONDS,
        }),
    },
  });
  const http = handle(createApp(deps));
  return {
    /** An API Gateway (HTTP API, payload 2.0) or Function URL event. */
    async http(event: Parameters<typeof http>[0], context?: Parameters<typeof http>[1]) {
      const response = await http(event, context);
      // Lambda freezes the environment once the handler returns: let started work reach a resting point first.
      let grace: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([...pending]),
        new Promise((r) => (grace = setTimeout(r, BACKGROUND_GRACE_MS))),
      ]);
      clearTimeout(grace);
      return response;
    },
    /** One dispatched job, ended with a `failed` status (code `timeout`) before Lambda's limit ends the invocation. */
    async job(event: JobEvent, remainingMs: number): Promise<FileStatus> {
      const budget = Math.max(1, Math.floor((remainingMs - END_MARGIN_MS) / 1000));
      const settings = { ...config, 'fetch-timeout': Math.min(config['fetch-timeout'], budget) };
      const { deps: jobDeps, close } = createNodeAppDeps({ store, settings, logger: log, sites: deps.sites });
      try {
        return await jobDeps.fetcher.runDispatched(event.pxecacheJob);
      } finally {
        await close();
      }
    },
  };
}

/** The event's request context, as hono's Lambda adapter passes it in `c.env`. */
function lambdaRequest(c: Context) {
  type RequestContext = {
    http?: { sourceIp?: string };
    authentication?: { clientCert?: { subjectDN?: string } };
  };
  return (c.env as { requestContext?: RequestContext } | undefined)?.requestContext;
}

function lambdaConfig(env: Env): ServeConfig {
  const raw = optionsFromVariables(Object.keys(serveSchema.shape), env);
  const config = withVariableNames(() => parseConfig('serve', raw));
  if (!config.store.startsWith('s3://'))
    throw new ConfigError([`PXECACHE_STORE: "${config.store}" on Lambda must be s3://<bucket>/<prefix>`]);
  return config;
}

function lambdaAuth(config: ServeConfig) {
  return withVariableNames(() =>
    hostedAuth(config, "put the printed entry in the function's PXECACHE_TOKENS (docs/deploy-aws.md)"),
  );
}

function s3Location(store: string): { bucket: string; prefix: string } {
  const rest = store.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const prefix = slash < 0 ? '' : rest.slice(slash + 1);
  return {
    bucket: slash < 0 ? rest : rest.slice(0, slash),
    prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`,
  };
}
