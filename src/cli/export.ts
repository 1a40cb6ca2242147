import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { bundleBytes, bundleManifest } from '../core/bundle.js';
import { publishedNames } from '../core/catalog.js';
import type { ExportConfig } from '../core/config.js';
import { InputError } from '../core/errors.js';
import { nodeSha256 } from '../runtime/node/hasher.js';
import { s3TimeoutsOf } from '../runtime/node/writer-store.js';
import { openStore } from '../storage/store-url.js';
import { EXIT_OK } from './exit.js';
import { createProgress } from './progress.js';

type Out = (line: string) => void;

/**
 * `pxecache export` (docs/air-gap.md): the current version of each chosen name, with upstream's validators, as one
 * bundle file that `pxecache import` restores elsewhere. Written under a temporary name and renamed once complete,
 * so a bundle that exists is a whole one.
 */
export async function runExport(config: ExportConfig, out: Out): Promise<number> {
  const { store, description } = await openStore(config.store, 'store', {
    probe: false,
    s3Timeouts: s3TimeoutsOf(config),
  });
  const published = await publishedNames(store);
  const wanted = config.names ?? [];
  const unknown = wanted.filter((n) => !published.includes(n));
  if (unknown.length) throw new InputError('names', `not published in ${description}: ${unknown.join(', ')}`);
  const { prefix } = config;
  const everything = !wanted.length && prefix === undefined;
  const names = published.filter((n) => everything || wanted.includes(n) || (prefix && n.startsWith(prefix)));
  if (!names.length)
    throw new InputError(prefix === undefined ? 'store' : 'prefix', `no published name to export in ${description}`);
  const exported = await bundleManifest(store, names, new Date().toISOString());
  const target = resolve(config.out);
  const temporary = `${target}.tmp-${randomUUID()}`;
  try {
    const bytes = bundleBytes({ store, hasher: nodeSha256 }, exported, createProgress());
    await pipeline(Readable.from(bytes), createWriteStream(temporary, { flags: 'wx' }));
    const handle = await open(temporary, 'r');
    await handle.sync().finally(() => handle.close());
    await rename(temporary, target);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
  const { manifest } = exported;
  for (const n of manifest.names) out(`${n.name} ${n.version} ${n.sha256} exported`);
  const bytes = manifest.blobs.reduce((sum, b) => sum + b.size, 0);
  out(`${target}: ${manifest.names.length} names, ${manifest.blobs.length} blobs, ${bytes} bytes of content`);
  return EXIT_OK;
}
