import { ConfigError } from '../../core/errors.js';
import type { Logger } from '../../core/ports.js';
import type { S3Timeouts } from '../../storage/s3-client.js';
import { openStore, type OpenedStore } from '../../storage/store-url.js';

/**
 * Opens the store of a writer (`serve`, `fetch`). Pointers and leases rely on create-only writes; an S3 server that
 * ignores `If-None-Match: *` cannot keep two writers apart, so pxecache says so loudly and refuses to run as a writer
 * unless the operator states that this is the only one (`--accept-single-writer`).
 */
export async function openWriterStore(
  config: {
    readonly store: string;
    readonly 'accept-single-writer': boolean;
    readonly 's3-part-size'?: number;
    readonly 's3-queue-size'?: number;
    readonly 's3-connect-timeout'?: number;
    readonly 's3-idle-timeout'?: number;
    readonly 'stale-write-age'?: number;
  },
  logger: Logger,
  open: (url: string) => Promise<OpenedStore> = (url) =>
    openStore(url, 'store', {
      ...(config['s3-part-size'] !== undefined ? { s3PartSizeBytes: config['s3-part-size'] * 1024 * 1024 } : {}),
      ...(config['s3-queue-size'] !== undefined ? { s3QueueSize: config['s3-queue-size'] } : {}),
      s3Timeouts: s3TimeoutsOf(config),
      ...(config['stale-write-age'] !== undefined ? { staleWriteMs: config['stale-write-age'] * 1000 } : {}),
      abortStaleUploads: true,
    }),
): Promise<OpenedStore> {
  const opened = await open(config.store);
  // What a writer killed mid-put left (README "Crash safety"): said once, so an operator sees crashes happened.
  const stale = opened.staleWrites;
  if (stale?.error !== undefined)
    logger.warn('cleaning abandoned writes failed; retried at the next start', {
      store: opened.description,
      error: stale.error,
    });
  else if (stale && stale.removed > 0)
    logger.info('abandoned writes removed', { store: opened.description, removed: stale.removed });
  if (opened.createOnly?.failed)
    throw new ConfigError([
      `--store: cannot write to ${opened.description}: ${opened.createOnly.detail} (check the endpoint, region and ` +
        'credentials: AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID / AWS_PROFILE)',
    ]);
  if (opened.createOnly && !opened.createOnly.honoured) {
    logger.error('STORE IGNORES CREATE-ONLY WRITES: two writers could overwrite each other', {
      store: opened.description,
      detail: opened.createOnly.detail,
      accepted: config['accept-single-writer'],
    });
    if (!config['accept-single-writer'])
      throw new ConfigError([
        `--store: ${opened.description} does not honour create-only writes (If-None-Match: *): ${opened.createOnly.detail}. ` +
          'Use a server that does (AWS S3, R2, MinIO, Ceph RGW), or run exactly one writer and pass --accept-single-writer',
      ]);
  }
  return opened;
}

/** `--s3-connect-timeout` and `--s3-idle-timeout` (seconds) as the S3 client takes them; absent ones keep its defaults. */
export function s3TimeoutsOf(config: {
  readonly 's3-connect-timeout'?: number;
  readonly 's3-idle-timeout'?: number;
}): S3Timeouts {
  return {
    ...(config['s3-connect-timeout'] !== undefined ? { connectTimeoutMs: config['s3-connect-timeout'] * 1000 } : {}),
    ...(config['s3-idle-timeout'] !== undefined ? { idleTimeoutMs: config['s3-idle-timeout'] * 1000 } : {}),
  };
}
