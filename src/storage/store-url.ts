import { resolve } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { cleanStaleTemps, createFileStore } from './file-store.js';
import { createMemoryStore } from './memory-store.js';
import type { ObjectStore } from './object-store.js';

export interface OpenedStore {
  readonly store: ObjectStore;
  /** For humans: `file:/var/lib/pxecache/store`. */
  readonly description: string;
  /** Local directory of a file store (for the one-machine default), else null. */
  readonly directory: string | null;
}

const STALE_TEMP_MS = 60 * 60 * 1000;

/** Store URLs (DESIGN.md "CLI contract"): `file:<path>`, `memory:` (unit tests only), `s3://<bucket>/<prefix>`. */
export async function openStore(url: string, option = 'store'): Promise<OpenedStore> {
  if (url === 'memory:') return { store: createMemoryStore(), description: 'memory:', directory: null };
  if (url.startsWith('file:')) {
    let path = url.slice('file:'.length);
    if (path.startsWith('//')) path = decodeURIComponent(new URL(url).pathname);
    if (path === '') throw new ConfigError([`--${option}: "file:" needs a directory, e.g. file:/var/lib/pxecache`]);
    const directory = resolve(path);
    // Temps older than an hour belong to a writer that died (kill -9, power loss); younger ones may be live.
    await cleanStaleTemps(directory, STALE_TEMP_MS).catch(() => 0);
    return { store: createFileStore({ root: directory }), description: `file:${directory}`, directory };
  }
  if (url.startsWith('s3://'))
    throw new ConfigError([`--${option}: s3:// stores are not available in this version yet; use file:<dir>`]);
  throw new ConfigError([`--${option}: "${url}" is not a store URL (file:<dir>, s3://<bucket>/<prefix>)`]);
}
