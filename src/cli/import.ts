import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BUNDLE_MANIFEST, importBundle } from '../core/bundle.js';
import { createCatalogRefresher } from '../core/catalog-refresher.js';
import type { ImportConfig } from '../core/config.js';
import { ConfigError, InputError } from '../core/errors.js';
import { assertNoDirectoryCollision, createTargetResolver, type Target } from '../core/fetch-target.js';
import { withHostLists } from '../core/host-rules.js';
import { systemClock, type Logger } from '../core/ports.js';
import { publishSeed, stageBytes, type SeedDeps } from '../core/seed.js';
import { parseTarHeader } from '../core/tar.js';
import { nodeUrlPolicy, parseUpstreamUrl } from '../core/url-policy.js';
import type { ObjectStore } from '../storage/object-store.js';
import { nodeSha256 } from '../runtime/node/hasher.js';
import { openWriterStore } from '../runtime/node/writer-store.js';
import { EXIT_FAILED, EXIT_OK } from './exit.js';
import { createProgress, createProgressReporter, noProgress } from './progress.js';

type Out = (line: string) => void;
type Result = { name: string; version: string; sha256: string; outcome: string };

/** Read in pieces this large: a boot image streams through, never held whole. */
const READ_CHUNK = 1024 * 1024;

/**
 * `pxecache import <file|dir|bundle>` (docs/air-gap.md): local media into the store as if fetched from `--as-url`,
 * under the name `fetch_boot_file` would give (`--prefix`), or a bundle made by `pxecache export`. Prints one line
 * per name: name, version, sha256, `imported` or `unchanged`.
 */
export async function runImport(config: ImportConfig, logger: Logger, out: Out, note: Out): Promise<number> {
  const path = resolve(config.source);
  const info = await stat(path).catch(() => null);
  if (!info) throw new InputError('source', `${path}: no such file or directory`);
  if (!info.isFile() && !info.isDirectory()) throw new InputError('source', `${path} is not a file or a directory`);
  const bundle = info.isFile() && (await isBundle(path));
  const given = (['prefix', 'as-url'] as const).filter((f) => config[f] !== undefined);
  if (bundle && given.length)
    throw new ConfigError(given.map((f) => `--${f}: not taken with a bundle, which carries its own names and URLs`));
  if (!bundle && given.length < 2)
    throw new ConfigError(
      (['prefix', 'as-url'] as const)
        .filter((f) => config[f] === undefined)
        .map((f) => `--${f}: is required to import media (a bundle made by pxecache export needs neither)`),
    );
  const { store } = await openWriterStore(config, logger);
  const policy = withHostLists(nodeUrlPolicy, { allow: config['upstream-allow'], deny: config['upstream-deny'] });
  const resolver = createTargetResolver(policy, store.maxKeyBytes);
  const deps: SeedDeps = {
    store,
    hasher: nodeSha256,
    clock: systemClock,
    newId: randomUUID,
    keepVersions: config['keep-versions'],
  };
  const reporter = config.progress ? createProgressReporter() : noProgress;
  const progress = createProgress(reporter);
  let results: Result[];
  if (bundle) {
    results = await importBundle({ ...deps, resolve: resolver, progress }, createReadStream(path, chunked));
  } else {
    const files = info.isDirectory() ? await regularFiles(path, note) : [{ path, name: '' }];
    const asUrl = config['as-url'] ?? '';
    const prefix = config.prefix ?? '';
    if (info.isDirectory()) {
      parseUpstreamUrl(asUrl, '--as-url', policy);
      if (!asUrl.endsWith('/'))
        throw new InputError(
          '--as-url',
          `"${asUrl}" must end in "/" for a directory: each file's URL is it + its name`,
        );
    }
    // Every name is checked before any byte is stored: a bad one in a directory changes nothing.
    const targets = files.map((f) => ({ ...f, target: targetOf(resolver, prefix, asUrl + f.name, f.name) }));
    for (const { target } of targets) await assertNoDirectoryCollision(store, target.name);
    results = [];
    for (const { path: file, target } of targets) results.push(await importFile(deps, file, target, progress));
  }
  reporter.close();
  for (const r of results) out(`${r.name} ${r.version} ${r.sha256} ${r.outcome}`);
  await refreshSnapshot(store, logger);
  return results.every((r) => r.outcome !== 'superseded') ? EXIT_OK : EXIT_FAILED;
}

const chunked = { highWaterMark: READ_CHUNK };

async function importFile(
  deps: SeedDeps,
  file: string,
  target: Target,
  progress: ReturnType<typeof createProgress>,
): Promise<Result> {
  const { size } = await stat(file);
  const shown = progress(target.name, size);
  const staged = await stageBytes(deps, createReadStream(file, chunked), size, (n) => shown.add(n));
  shown.done();
  // No validators: a local file's mtime is when it was copied, not upstream's Last-Modified. Sent as
  // If-Modified-Since, it would make upstream answer 304 for bytes that may differ from these (docs/air-gap.md); the
  // first revalidation downloads instead, and publishes nothing new when the bytes are the same.
  const { outcome, record } = await publishSeed(deps, {
    name: target.name,
    basename: target.basename,
    url: target.url.href,
    staged,
    etag: null,
    lastModified: null,
  });
  return { name: target.name, version: record.version, sha256: record.sha256, outcome };
}

/** The fetch rules' target for (prefix, URL), their errors naming this command's flags (or the file to blame). */
function targetOf(resolver: ReturnType<typeof createTargetResolver>, prefix: string, url: string, file: string) {
  try {
    const target = resolver({ prefix, path: url });
    if (target.kind === 'nfs')
      throw new InputError('--as-url', 'nfs:// media are mounted by installers, not downloaded: nothing to import');
    return target;
  } catch (err) {
    if (!(err instanceof InputError) || err.field.startsWith('--')) throw err;
    const blamed = err.field === 'prefix' ? '--prefix' : file ? `source file "${file}"` : '--as-url';
    throw new InputError(blamed, err.message.slice(err.field.length + 2));
  }
}

/**
 * The regular files directly in `dir`, by name; anything else (symlinks, directories, devices) is skipped, said so,
 * and so are hidden files: a medium's `.treeinfo` or `.discinfo` is not a boot file, and no name may start with ".".
 */
async function regularFiles(dir: string, note: Out): Promise<{ path: string; name: string }[]> {
  const files = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (entry.name.startsWith('.')) note(`skipped ${join(dir, entry.name)}: a hidden file (not a boot file)`);
    else if (entry.isFile()) files.push({ path: join(dir, entry.name), name: entry.name });
    else note(`skipped ${join(dir, entry.name)}: ${entry.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}`);
  }
  if (!files.length) throw new InputError('source', `${dir} has no regular files to import`);
  return files;
}

/** A bundle is a tar archive whose first entry is the manifest; any other file is media. */
async function isBundle(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const block = new Uint8Array(512);
    const { bytesRead } = await handle.read(block, 0, 512, 0);
    return bytesRead === 512 && parseTarHeader(block, 0)?.name === BUNDLE_MANIFEST;
  } catch {
    return false;
  } finally {
    await handle.close();
  }
}

/** Updates an existing catalog snapshot, as a one-shot fetch does at its end (agents then read one object). */
async function refreshSnapshot(store: ObjectStore, logger: Logger): Promise<void> {
  const catalog = createCatalogRefresher({ store, clock: systemClock, logger, delayMs: 0 });
  catalog.touch();
  await catalog.flush();
}
