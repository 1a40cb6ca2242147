import { putSmallBlob } from './blobs.js';
import { cursorEtag } from './catalog.js';
import type { ChangeSignal } from './changes.js';
import { NotFoundError, PxeError } from './errors.js';
import { appendChanges, formatCursor, verifiedCursor } from './events.js';
import { keys } from './object-keys.js';
import type { Clock, HasherFactory } from './ports.js';
import { configFiles, defaultFiles, type Variant } from './pxeconfig.js';
import type { ConfigCatalog, ConfigEntry, ConfigRecord } from './records.js';
import { getJson, listAll, putJson, readAll, type ObjectStore } from '../storage/object-store.js';

/**
 * Boot configs written through the pxeconfig routes, per site: the bytes are content-addressed blobs (shared with
 * boot files), and each path has a last-writer-wins record the agents of that site materialise. Like smart-proxy,
 * a config is a plain overwrite: Foreman serialises the writes for one host.
 */

/** smart-proxy answers a failed write with 400 and the Ruby error text; we keep the prefix and say what failed. */
export class ConfigWriteError extends PxeError {
  constructor(message: string) {
    super('config-write', message);
  }
}

export interface BootConfigDeps {
  readonly store: ObjectStore;
  readonly hasher: HasherFactory;
  readonly clock: Clock;
  readonly newId: () => string;
  readonly changes?: ChangeSignal;
}

const encoder = new TextEncoder();

export function createBootConfigs(deps: BootConfigDeps) {
  async function live(site: string): Promise<Map<string, ConfigRecord>> {
    const out = new Map<string, ConfigRecord>();
    for await (const key of listAll(deps.store, keys.configsPrefix(site))) {
      const record = await getJson<ConfigRecord>(deps.store, key);
      if (record && !record.deleted) out.set(record.path, record);
    }
    return out;
  }

  /** smart-proxy writes with mkdir_p + File.open: a path under a file, or onto a directory, fails there too. */
  function clash(path: string, existing: Map<string, ConfigRecord>): string | null {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (existing.has(dir)) return `File exists - ${dir}`;
    }
    for (const other of existing.keys()) if (other.startsWith(`${path}/`)) return `Is a directory - ${path}`;
    return null;
  }

  async function write(
    site: string,
    files: string[],
    content: string,
    meta: { variant: Variant; mac: string | null; params: Record<string, string> },
  ) {
    const existing = await live(site);
    for (const path of files) {
      const problem = clash(path, existing);
      if (problem) throw new ConfigWriteError(problem);
    }
    const bytes = encoder.encode(content);
    const h = deps.hasher();
    h.update(bytes);
    const sha256 = await h.digest();
    const key = await putSmallBlob(deps.store, bytes, sha256, deps.newId);
    const updatedAt = new Date(deps.clock.now()).toISOString();
    for (const path of files) {
      const record: ConfigRecord = {
        site,
        path,
        deleted: false,
        sha256,
        size: bytes.byteLength,
        key,
        updatedAt,
        ...meta,
      };
      await putJson(deps.store, keys.config(site, path), record);
    }
    // After the records (a reader of the event must find them). Stopping in between leaves a config that agents
    // following the change log learn about at their next full resync, or when Foreman writes that host again.
    await appendChanges(
      deps.store,
      files.map((path) => ({ kind: 'config', site, path })),
      updatedAt,
    );
    deps.changes?.fire();
  }

  return {
    async set(site: string, variant: Variant, mac: string, content: string, params: Record<string, string>) {
      await write(site, configFiles(variant, mac), content, { variant, mac, params });
    },

    async createDefault(site: string, variant: Variant, menu: string, params: Record<string, string>) {
      await write(site, defaultFiles(variant), menu, { variant, mac: null, params });
    },

    /** Deleting what does not exist succeeds, as smart-proxy's delete_file skips missing files. */
    async remove(site: string, variant: Variant, mac: string) {
      const updatedAt = new Date(deps.clock.now()).toISOString();
      const removed: string[] = [];
      for (const path of configFiles(variant, mac)) {
        const record = await getJson<ConfigRecord>(deps.store, keys.config(site, path));
        if (!record || record.deleted) continue;
        await putJson(deps.store, keys.config(site, path), { ...record, deleted: true, updatedAt });
        removed.push(path);
      }
      if (removed.length === 0) return;
      await appendChanges(
        deps.store,
        removed.map((path) => ({ kind: 'config', site, path })),
        updatedAt,
      );
      deps.changes?.fire();
    },

    async get(site: string, variant: Variant, mac: string): Promise<Uint8Array> {
      const path = configFiles(variant, mac)[0] ?? '';
      const record = await getJson<ConfigRecord>(deps.store, keys.config(site, path));
      const object = record && !record.deleted ? await deps.store.get(record.key) : null;
      if (!object) throw new NotFoundError(`File ${path} not found`);
      return readAll(object.body);
    },

    /** Every path of the site, tombstones included (an agent must learn about deletions). */
    async catalog(site: string): Promise<ConfigCatalog> {
      // The cursor first: the entries are at least as new as it says (see readCatalog).
      const cursor = formatCursor(await verifiedCursor(deps.store));
      return { site, cursor, etag: cursorEtag(cursor), entries: await listConfigEntries(deps.store, site) };
    },
  };
}

/** Every config entry of `site`, tombstones included, sorted by path. */
export async function listConfigEntries(store: ObjectStore, site: string): Promise<ConfigEntry[]> {
  const paths: string[] = [];
  for await (const key of listAll(store, keys.configsPrefix(site))) paths.push(keys.configPathFromKey(site, key));
  return readConfigEntries(store, site, paths);
}

/** The current entry of each of `paths` of `site` (sorted by path; paths never written are left out). */
export async function readConfigEntries(store: ObjectStore, site: string, paths: readonly string[]) {
  const entries: ConfigEntry[] = [];
  const concurrency = 16;
  for (let i = 0; i < paths.length; i += concurrency) {
    const batch = await Promise.all(
      paths.slice(i, i + concurrency).map((p) => getJson<ConfigRecord>(store, keys.config(site, p))),
    );
    for (const r of batch) if (r) entries.push(toConfigEntry(r));
  }
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function toConfigEntry(r: ConfigRecord): ConfigEntry {
  return { path: r.path, deleted: r.deleted, sha256: r.sha256, size: r.size, key: r.key, updatedAt: r.updatedAt };
}

export type BootConfigs = ReturnType<typeof createBootConfigs>;
