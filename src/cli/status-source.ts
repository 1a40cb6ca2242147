/**
 * Where `pxecache status` reads the state from: a fetcher's native API (`GET /api/v1/files`, `/api/v1/sites`,
 * `/api/v1/files/<name>`, with a read token), or a store directly (the catalog, status records and the reports
 * agents wrote there: every site that ever reported, as a store knows no `--sites`).
 */
import { readCatalog } from '../core/catalog.js';
import { ConfigError, PxeError, describe } from '../core/errors.js';
import { validateName } from '../core/naming.js';
import { keys } from '../core/object-keys.js';
import { systemClock } from '../core/ports.js';
import type { CatalogEntry, FileStatus } from '../core/records.js';
import { readSiteReports, type SiteInfo } from '../core/site-reports.js';
import { readStatus } from '../core/status.js';
import type { StatusConfig } from '../core/config.js';
import { s3TimeoutsOf } from '../runtime/node/writer-store.js';
import { listAll } from '../storage/object-store.js';
import { openStore } from '../storage/store-url.js';

export interface StateSource {
  readonly description: string;
  entries(): Promise<readonly CatalogEntry[]>;
  sites(): Promise<SiteInfo[]>;
  status(name: string): Promise<FileStatus | null>;
}

export async function openStateSource(config: StatusConfig): Promise<StateSource> {
  return /^https?:\/\//.test(config.source) ? httpState(config.source, config.token) : storeState(config);
}

function httpState(baseUrl: string, token: string | undefined): StateSource {
  const base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  async function get<T>(path: string, absent?: 404): Promise<T | null> {
    const url = new URL(path, base);
    let res: Response;
    try {
      res = await fetch(url, { headers });
    } catch (err) {
      throw new PxeError('source-unreachable', `[source:http] GET ${url.href}: ${describe(err)}`);
    }
    if (res.status === absent) return null;
    if (!res.ok) {
      const detail = (await res.text().catch(() => '')).slice(0, 300);
      throw new PxeError('source-status', `[source:http] GET ${url.href}: ${res.status} ${detail}`);
    }
    return (await res.json()) as T;
  }
  return {
    description: `http source ${base.href}`,
    entries: async () => (await get<{ entries: CatalogEntry[] }>('api/v1/files'))?.entries ?? [],
    sites: async () => (await get<SiteInfo[]>('api/v1/sites')) ?? [],
    status: (name) => get<FileStatus>(`api/v1/files/${name.split('/').map(encodeURIComponent).join('/')}`, 404),
  };
}

async function storeState(config: StatusConfig): Promise<StateSource> {
  if (!/^(file:.+|s3:\/\/.+)$/.test(config.source))
    throw new ConfigError([`--source: must be an http(s):// fetcher URL or a store URL`]);
  const { store, description } = await openStore(config.source, 'source', {
    probe: false,
    s3Timeouts: s3TimeoutsOf(config),
    staleWriteMs: Number.POSITIVE_INFINITY, // reading only: a writer's temps are not ours to sweep
  });
  return {
    description,
    entries: async () => (await readCatalog(store)).entries,
    async sites() {
      const names: string[] = [];
      for await (const key of listAll(store, keys.sitesPrefix)) {
        const site = /^sites\/([^/]+)\/report\.json$/.exec(key)?.[1];
        if (site !== undefined) names.push(site);
      }
      const reports = await readSiteReports(store, names);
      return names.map((name, i) => ({ name, serverName: '', report: reports[i] ?? null }));
    },
    status: (name) => readStatus(store, systemClock, name),
  };
}

/** The name operand checked before it becomes a URL path or a store key. */
export function checkedName(name: string): string {
  validateName(name, 'name');
  return name;
}
