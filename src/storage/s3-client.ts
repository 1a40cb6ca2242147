import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

export type Env = Readonly<Record<string, string | undefined>>;

/** Network limits of every S3 request; without them a server that stops answering hangs a fetch forever. */
export interface S3Timeouts {
  /** TCP connect (and TLS) to the endpoint. Default 5 s. */
  readonly connectTimeoutMs?: number;
  /**
   * Longest silence on a request's socket: sending the body, waiting for the answer, reading the answer. Not a limit
   * on the whole request, so a large part on a slow link is fine as long as bytes move. Default 60 s.
   */
  readonly idleTimeoutMs?: number;
}

export const DEFAULT_S3_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_S3_IDLE_TIMEOUT_MS = 60_000;
/** The SDK's standard retry mode: each request is tried this many times (throttling, 5xx, resets, timeouts). */
export const DEFAULT_S3_MAX_ATTEMPTS = 3;

/**
 * An S3 client configured from the AWS environment conventions (DESIGN.md "CLI contract"): `AWS_ENDPOINT_URL_S3`,
 * else `AWS_ENDPOINT_URL`; `AWS_REGION`, else `AWS_DEFAULT_REGION`; keys from `env` when it has both, else the SDK's
 * default credential chain (environment, profiles, SSO, container and instance roles); `AWS_MAX_ATTEMPTS`, else 3.
 */
export function createS3ClientFromEnv(env: Env, timeouts: S3Timeouts = {}): S3Client {
  const endpoint = nonEmpty(env['AWS_ENDPOINT_URL_S3']) ?? nonEmpty(env['AWS_ENDPOINT_URL']);
  // A custom endpoint (Ceph RGW, MinIO, R2) rarely cares about the region, but SigV4 needs one.
  const region =
    nonEmpty(env['AWS_REGION']) ?? nonEmpty(env['AWS_DEFAULT_REGION']) ?? (endpoint ? 'us-east-1' : undefined);
  const accessKeyId = nonEmpty(env['AWS_ACCESS_KEY_ID']);
  const secretAccessKey = nonEmpty(env['AWS_SECRET_ACCESS_KEY']);
  const sessionToken = nonEmpty(env['AWS_SESSION_TOKEN']);
  const config: S3ClientConfig = {
    // The SDK's default checksums (CRC32 trailers since 3.729) make PutObject with a stream body fail with 411 on
    // Ceph RGW, and are not understood by many other S3 engines: checksum only where the API requires it.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // The SDK sets no timeout at all by default: a server that accepts a request and never answers (a full Ceph
    // memstore did) holds it forever. A timed-out request is retried like a reset or a 503 (standard retry mode).
    // `socketTimeout` is the idle limit; the SDK's `requestTimeout` would cap whole requests (large parts, long
    // blob reads) and only warns unless told to throw.
    requestHandler: {
      connectionTimeout: timeouts.connectTimeoutMs ?? DEFAULT_S3_CONNECT_TIMEOUT_MS,
      socketTimeout: timeouts.idleTimeoutMs ?? DEFAULT_S3_IDLE_TIMEOUT_MS,
    },
    maxAttempts: positiveInt(env['AWS_MAX_ATTEMPTS']) ?? DEFAULT_S3_MAX_ATTEMPTS,
  };
  if (region !== undefined) config.region = region;
  // Virtual-hosted addressing needs wildcard DNS for the endpoint, which on-prem engines seldom have.
  if (endpoint !== undefined) Object.assign(config, { endpoint, forcePathStyle: true });
  if (accessKeyId !== undefined && secretAccessKey !== undefined) {
    config.credentials =
      sessionToken === undefined ? { accessKeyId, secretAccessKey } : { accessKeyId, secretAccessKey, sessionToken };
  }
  return new S3Client(config);
}

export function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

export function nameOf(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

export function isAbsent(err: unknown): boolean {
  const name = nameOf(err);
  return name === 'NoSuchKey' || name === 'NotFound' || (statusOf(err) === 404 && name !== 'NoSuchBucket');
}

/** `503 SlowDown`, plus the server's message when it sent one (Ceph RGW sends none: the SDK says UnknownError). */
export function summary(err: unknown): string {
  const status = statusOf(err);
  if (status === undefined || !(err instanceof Error))
    return err instanceof Error ? err.message || err.name : String(err);
  const message =
    err.message === '' || err.message === 'UnknownError' || err.message === err.name ? '' : `: ${err.message}`;
  return `${status} ${err.name}${message}`;
}

function positiveInt(value: string | undefined): number | undefined {
  const n = Number(nonEmpty(value));
  return Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
