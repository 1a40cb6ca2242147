import { resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { ConfigError } from '../core/errors.js';
import { cleanStaleTemps, createFileStore } from './file-store.js';
import { createMemoryStore } from './memory-store.js';
import { keyProblem, type ObjectStore } from './object-store.js';
import type { Env, S3Timeouts } from './s3-client.js';

export interface OpenedStore {
  readonly store: ObjectStore;
  /** For humans: `file:/var/lib/pxecache/store`. */
  readonly description: string;
  /** Local directory of a file store (for the one-machine default), else null. */
  readonly directory: string | null;
  /**
   * What a create-only probe found at open (`probeCreateOnly`), or null when none ran: the file and memory drivers
   * guarantee create-only themselves, and a caller may skip the probe. Whether an unhonoured result is fatal is the
   * caller's decision.
   */
  readonly createOnly: { readonly honoured: boolean; readonly detail: string; readonly failed?: true } | null;
  /**
   * Writes a dead writer left behind, removed at open: `.tmp-*` files of a file store, or (with `abortStaleUploads`)
   * incomplete multipart uploads under an s3:// store's prefix; `error` when the sweep failed (the store still opens).
   */
  readonly staleWrites: { readonly removed: number; readonly error?: string } | null;
}

export interface OpenStoreOptions {
  /** Default true: probe whether an s3:// store really honours create-only writes (writes and deletes one key). */
  readonly probe?: boolean;
  /** AWS environment for s3:// (endpoint, region, keys); default `process.env`. */
  readonly env?: Env;
  /** An S3 client to use instead of one made from `env`. */
  readonly s3Client?: S3Client;
  /** Multipart upload part size and parts in flight for streamed s3:// puts (memory ~ (queue + 2) x part). */
  readonly s3PartSizeBytes?: number;
  readonly s3QueueSize?: number;
  /** Connect and idle limits of every S3 request (defaults in s3-client.ts: 5 s and 60 s). */
  readonly s3Timeouts?: S3Timeouts;
  /** In-flight writes idle this long belong to a writer that died (kill -9, power loss); default one hour. */
  readonly staleWriteMs?: number;
  /** s3://: abort stale multipart uploads under the prefix at open (writers; readers may lack the permission). */
  readonly abortStaleUploads?: boolean;
}

const STALE_TEMP_MS = 60 * 60 * 1000;
/** S3 bucket names (the rules for new buckets: 3-63 of lowercase letters, digits, '.', '-'). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Store URLs (DESIGN.md "CLI contract"): `file:<path>`, `memory:` (unit tests only), `s3://<bucket>/<prefix>`. */
export async function openStore(url: string, option = 'store', opts: OpenStoreOptions = {}): Promise<OpenedStore> {
  if (url === 'memory:')
    return { store: createMemoryStore(), description: 'memory:', directory: null, createOnly: null, staleWrites: null };
  if (url.startsWith('file:')) {
    let path = url.slice('file:'.length);
    if (path.startsWith('//')) path = decodeURIComponent(new URL(url).pathname);
    if (path === '') throw new ConfigError([`--${option}: "file:" needs a directory, e.g. file:/var/lib/pxecache`]);
    const directory = resolve(path);
    // Temps idle that long belong to a writer that died (kill -9, power loss); younger ones may be live (a put keeps
    // touching its temp's mtime).
    const staleWrites = await sweep(() => cleanStaleTemps(directory, opts.staleWriteMs ?? STALE_TEMP_MS));
    return {
      store: createFileStore({ root: directory }),
      description: `file:${directory}`,
      directory,
      createOnly: null,
      staleWrites,
    };
  }
  if (url.startsWith('s3://')) {
    const rest = url.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    let prefix = slash < 0 ? '' : rest.slice(slash + 1);
    if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
    if (!BUCKET.test(bucket))
      throw new ConfigError([
        `--${option}: "${url}" needs a bucket name (3-63 of a-z 0-9 . -): s3://<bucket>/<prefix>`,
      ]);
    const problem = prefix === '' ? null : keyProblem(prefix, 'prefix');
    if (problem !== null) throw new ConfigError([`--${option}: "${url}" has an invalid prefix: ${problem}`]);
    // The AWS SDK is loaded only for s3:// stores: it is tens of MiB of resident memory a file-store site never needs.
    const [{ createS3ClientFromEnv }, { createS3Store, probeCreateOnly }, { abortStaleUploads }] = await Promise.all([
      import('./s3-client.js'),
      import('./s3-store.js'),
      import('./s3-stale-uploads.js'),
    ]);
    const client = opts.s3Client ?? createS3ClientFromEnv(opts.env ?? process.env, opts.s3Timeouts);
    const store = createS3Store({
      bucket,
      prefix,
      client,
      ...(opts.s3PartSizeBytes !== undefined ? { partSizeBytes: opts.s3PartSizeBytes } : {}),
      ...(opts.s3QueueSize !== undefined ? { queueSize: opts.s3QueueSize } : {}),
    });
    const createOnly = opts.probe === false ? null : await probeCreateOnly(store);
    const staleWrites = opts.abortStaleUploads
      ? await sweep(() => abortStaleUploads(client, bucket, prefix, opts.staleWriteMs ?? STALE_TEMP_MS))
      : null;
    return { store, description: `s3://${bucket}/${prefix}`, directory: null, createOnly, staleWrites };
  }
  throw new ConfigError([`--${option}: "${url}" is not a store URL (file:<dir>, s3://<bucket>/<prefix>)`]);
}

/** A failed sweep is reported, not thrown: leftovers cost space, while refusing to start would cost the service. */
async function sweep(run: () => Promise<number>): Promise<{ removed: number; error?: string }> {
  try {
    return { removed: await run() };
  } catch (err) {
    return { removed: 0, error: err instanceof Error ? err.message : String(err) };
  }
}
