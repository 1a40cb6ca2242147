/**
 * Boot configs of one site (written by Foreman through the pxeconfig routes) materialised in the TFTP root.
 *
 * Ownership (DESIGN.md "Edge layout"): the root carries no marker, so the paths the agent wrote and the sha256 it
 * wrote there are listed in `<stateDir>/configs-<site>.json`. A live catalog entry is always written (smart-proxy
 * overwrites too) and from then on the path is the agent's; a tombstone deletes a path only while it is the agent's
 * and still holds the bytes the agent wrote. Anything else in the root is never touched.
 */
import { unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PxeError, describe } from '../core/errors.js';
import type { HasherFactory, Logger } from '../core/ports.js';
import type { ConfigCatalog, ConfigEntry } from '../core/records.js';
import { configTarget, fileSha256, inspectTarget, writeConfigFile } from './config-files.js';
import type { ConfigTarget } from './config-files.js';
import { configStateFile, loadConfigState, saveConfigState } from './config-state.js';
import { isSha256 } from './layout.js';
import type { Settled } from './poll.js';
import { fsyncDir } from './safe-dirs.js';
import type { CatalogSource } from './source.js';

export interface ConfigNote {
  readonly path: string;
  readonly message: string;
}

export interface ConfigReport {
  readonly site: string;
  /** The site's config catalog had not changed and nothing needed retrying. */
  readonly notModified: boolean;
  readonly etag: string | null;
  /** No error and no failed path. */
  readonly ok: boolean;
  /** The whole config sync failed (catalog unreadable, unknown site, state file unreadable or unwritable). */
  readonly error: string | null;
  readonly written: readonly string[];
  readonly deleted: readonly string[];
  /** Tombstones left alone because the file is no longer what the agent wrote: reported once, then the operator's. */
  readonly kept: readonly ConfigNote[];
  readonly failed: readonly ConfigNote[];
}

export interface ConfigSyncOptions {
  readonly root: string;
  readonly stateDir: string;
  readonly site: string;
  readonly source: CatalogSource;
  readonly hasher: HasherFactory;
  readonly logger: Logger;
}

type Applied = Pick<ConfigReport, 'written' | 'deleted' | 'kept' | 'failed' | 'error'>;

export function createConfigSync(opts: ConfigSyncOptions) {
  const { root, site, logger, hasher } = opts;
  const stateFile = configStateFile(opts.stateDir, site);
  /** The catalog last applied and whether that pass was clean (failures are retried even when it is unchanged). */
  let last: { catalog: ConfigCatalog | null; ok: boolean } | null = null;
  const report = (r: Omit<ConfigReport, 'site' | 'kept' | 'written' | 'deleted' | 'failed'> & Partial<Applied>) => ({
    site,
    written: [],
    deleted: [],
    kept: [],
    failed: [],
    ...r,
  });

  function unchanged(): ConfigReport {
    return report({ notModified: true, etag: last?.catalog?.etag ?? null, ok: true, error: null });
  }

  async function pass(got: Settled<ConfigCatalog | 'not-modified'>, signal?: AbortSignal): Promise<ConfigReport> {
    const known = last?.catalog ?? null;
    if (!got.ok) {
      signal?.throwIfAborted();
      const error = `configs of site ${JSON.stringify(site)}: ${describe(got.error)}`;
      logger.error('agent: cannot read configs', { site, error });
      last = { catalog: known, ok: false };
      return report({ notModified: false, etag: known?.etag ?? null, ok: false, error });
    }
    const catalog = got.value === 'not-modified' ? known : got.value;
    // 'not-modified' with nothing known cannot come from an unconditional request; there is nothing to apply.
    if (catalog === null) return report({ notModified: false, etag: null, ok: true, error: null });
    const applied = await apply(catalog, signal);
    const ok = applied.error === null && applied.failed.length === 0;
    last = { catalog, ok };
    return report({ notModified: false, etag: catalog.etag, ok, ...applied });
  }

  /** Problems of the root against the site's current configs (or why they are unknown), for check(). Read-only. */
  async function check(got: Settled<ConfigCatalog>): Promise<string[]> {
    if (!got.ok) return [`configs of site ${JSON.stringify(site)}: ${describe(got.error)}`];
    return problems(got.value);
  }

  async function apply(catalog: ConfigCatalog, signal?: AbortSignal): Promise<Applied> {
    const written: string[] = [];
    const deleted: string[] = [];
    const kept: ConfigNote[] = [];
    const failed: ConfigNote[] = [];
    const fail = (path: string, err: unknown) => {
      const message = describe(err);
      failed.push({ path, message });
      logger.error('agent: config failed', { site, path, error: message });
    };

    let owned: Map<string, string>;
    try {
      owned = await loadConfigState(stateFile);
    } catch (err) {
      return { written, deleted, kept, failed, error: describe(err) };
    }
    const before = JSON.stringify([...owned]);

    // Validate everything before touching the filesystem: a refused path creates and deletes nothing.
    const counts = new Map<string, number>();
    for (const e of catalog.entries) counts.set(e.path, (counts.get(e.path) ?? 0) + 1);
    const planned: { entry: ConfigEntry; target: ConfigTarget }[] = [];
    for (const [path, n] of counts) if (n > 1) fail(path, new PxeError('config-catalog', `appears ${n} times`));
    for (const entry of catalog.entries) {
      if ((counts.get(entry.path) ?? 0) > 1) continue;
      try {
        const target = configTarget(root, entry.path);
        if (!entry.deleted) checkBlob(entry);
        planned.push({ entry, target });
      } catch (err) {
        fail(entry.path, err);
      }
    }

    // Tombstones first: a deletion never waits behind a slow write.
    for (const { entry, target } of planned.filter((p) => p.entry.deleted)) {
      const mine = owned.get(entry.path);
      if (mine === undefined) continue; // never ours (an operator's or the old smart proxy's file): not touched
      try {
        const state = await inspectTarget(root, target);
        const sha = state.kind === 'file' ? await fileSha256(target.file, hasher) : null;
        if (state.kind === 'absent') {
          owned.delete(entry.path);
        } else if (sha === mine) {
          await unlink(target.file);
          await fsyncDir(dirname(target.file));
          owned.delete(entry.path);
          deleted.push(entry.path);
          logger.info('agent: config deleted', { site, path: entry.path });
        } else {
          // Changed by hand since: the operator's now. Reported once, and the path leaves the agent's state.
          const now =
            state.kind === 'blocked' ? state.why : state.kind === 'symlink' ? 'a symlink' : `sha256 ${sha ?? '?'}`;
          const message = `deleted by Foreman, but changed since the agent wrote it (now ${now}); left in place`;
          owned.delete(entry.path);
          kept.push({ path: entry.path, message });
          logger.warn('agent: config left in place', { site, path: entry.path, reason: message });
        }
      } catch (err) {
        fail(entry.path, err);
      }
    }

    for (const { entry, target } of planned.filter((p) => !p.entry.deleted)) {
      try {
        const state = await inspectTarget(root, target);
        if (state.kind === 'blocked') throw new PxeError('config-conflict', `${state.why}; nothing touched`);
        if (state.kind === 'file' && state.size === entry.size) {
          // Already the catalog's bytes (written by an earlier pass whose state write was lost, or by the old smart
          // proxy): writing them again would make the path ours, so skipping the write changes nothing about that.
          if ((await fileSha256(target.file, hasher)) === entry.sha256) {
            owned.set(entry.path, entry.sha256);
            continue;
          }
        }
        await writeConfigFile({
          root,
          target,
          blob: entry,
          source: opts.source,
          hasher,
          ...(signal ? { signal } : {}),
        });
        owned.set(entry.path, entry.sha256);
        written.push(entry.path);
        logger.info('agent: config written', { site, path: entry.path, sha256: entry.sha256 });
      } catch (err) {
        signal?.throwIfAborted();
        fail(entry.path, err);
      }
    }

    if (JSON.stringify([...owned]) !== before) {
      try {
        await saveConfigState(stateFile, site, owned);
      } catch (err) {
        // The files are in place, but the agent may not know later that they are its own to delete.
        const error = `[agent] cannot write ${stateFile}: ${describe(err)}`;
        logger.error('agent: config state not saved', { site, error });
        return { written, deleted, kept, failed, error };
      }
    }
    return { written, deleted, kept, failed, error: null };
  }

  /** Why the root does not hold the live configs of the catalog (empty when it does). Read-only. */
  async function problems(catalog: ConfigCatalog): Promise<string[]> {
    const out: string[] = [];
    for (const entry of catalog.entries) {
      if (entry.deleted) continue;
      const label = `config ${JSON.stringify(entry.path)} (site ${site})`;
      let target: ConfigTarget;
      try {
        target = configTarget(root, entry.path);
      } catch (err) {
        out.push(`${label}: ${describe(err)}`);
        continue;
      }
      const state = await inspectTarget(root, target);
      if (state.kind === 'absent') out.push(`${label}: ${target.file} is missing`);
      else if (state.kind === 'blocked') out.push(`${label}: ${state.why}`);
      else if (state.kind === 'symlink') out.push(`${label}: ${target.file} is a symlink, not the catalog's file`);
      else if (state.size !== entry.size || (await fileSha256(target.file, hasher)) !== entry.sha256) {
        out.push(`${label}: ${target.file} has other bytes than the catalog (sha256 ${entry.sha256.slice(0, 16)}...)`);
      }
    }
    return out;
  }

  return { stateFile, unchanged, pass, check };
}

export type ConfigSync = ReturnType<typeof createConfigSync>;

function checkBlob(entry: ConfigEntry): void {
  if (!isSha256(entry.sha256)) throw new PxeError('integrity', `sha256 ${JSON.stringify(entry.sha256)} is not hex`);
  if (!Number.isSafeInteger(entry.size) || entry.size < 0) {
    throw new PxeError('integrity', `size ${JSON.stringify(entry.size)} is not a non-negative integer`);
  }
}
