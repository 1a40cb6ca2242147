import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * An S3 client configured from the AWS environment conventions (DESIGN.md "CLI contract"): `AWS_ENDPOINT_URL_S3`,
 * else `AWS_ENDPOINT_URL`; `AWS_REGION`, else `AWS_DEFAULT_REGION`; keys from `env` when it has both, else the SDK's
 * default credential chain (environment, profiles, SSO, container and instance roles).
 */
export function createS3ClientFromEnv(env: Env): S3Client {
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

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
