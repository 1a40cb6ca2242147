/** Fixtures for agent tests: temp roots, catalog entries from bytes, and an in-memory CatalogSource with faults. */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { HasherFactory, Logger } from '../../src/core/ports.js';
import type { CatalogEntry, Changes, ConfigEntry, FileState } from '../../src/core/records.js';
import { versionOf } from '../../src/core/records.js';
import { UnknownSiteError, type CatalogSource } from '../../src/agent/source.js';
import type { SiteReport } from '../../src/core/site-reports.js';

export const nodeHasher: HasherFactory = () => {
  const h = createHash('sha256');
  return { update: (c) => void h.update(c), digest: () => Promise.resolve(h.digest('hex')) };
};

export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface TempRoot {
  readonly base: string;
  readonly root: string;
  readonly stateDir: string;
  /** A sibling of the root that tests plant symlinks to; nothing may ever be written there. */
  readonly outside: string;
}

export async function tempRoot(): Promise<TempRoot> {
  const base = await mkdtemp(join(tmpdir(), 'pxecache-agent-'));
  const t = {
    base,
    root: join(base, 'tftpboot'),
    stateDir: join(base, 'tftpboot.state'),
    outside: join(base, 'outside'),
  };
  await mkdir(t.root);
  await mkdir(t.outside);
  return t;
}

/** A catalog entry for `content` published under `name`; `previous` are older versions, newest first. */
export function entryFor(
  name: string,
  content: string,
  previous: readonly string[] = [],
  basename?: string,
): CatalogEntry {
  const sha = sha256(content);
  const version = versionOf(sha);
  const file = basename ?? name.split('-').pop() ?? 'file';
  return {
    name,
    generation: previous.length + 1,
    version,
    sha256: sha,
    size: Buffer.byteLength(content),
    basename: file,
    url: `http://mirror.example/os/${file}`,
    fetchedAt: '2024-01-01T00:00:00.000Z',
    key: `blobs/${sha}`,
    versions: [version, ...previous],
  };
}

export function versionOfContent(content: string): string {
  return versionOf(sha256(content));
}

export interface FakeSource extends CatalogSource {
  /**
   * Replaces the whole files catalog (what changed against the previous one becomes a delta). `announce: false`
   * changes it without a change event, as a publisher that stopped between its pointer and its event would.
   */
  publish(entries: readonly CatalogEntry[], announce?: boolean): void;
  /** Sets a site's config catalog (a site never published is unknown: changes() rejects, like the fetcher's 404). */
  publishConfigs(site: string, entries: readonly ConfigEntry[]): void;
  /** Every changes() call: its `since` (null: a full snapshot was asked for) and what it answered. */
  readonly calls: { site: string | null; since: string | null; answer: 'not-modified' | 'delta' | 'complete' }[];
  /** Bytes served for a sha256 (the wrong ones, to simulate corruption). */
  blobs: Map<string, Uint8Array>;
  /** `sha256 -> byte count`: the next read of that blob fails after that many bytes, once. */
  failAfter: Map<string, number>;
  readonly opened: { sha256: string; offset: number }[];
  /** Source-side states (`fetching` while a re-fetch runs); a published name not in it is `ready`. */
  states: Map<string, FileState>;
  /** Every fileState() call, by name. */
  readonly stateCalls: string[];
  /** Every site report the agent sent, in order. */
  readonly reports: SiteReport[];
}

/**
 * An in-memory change feed with the fetcher's semantics: a cursor per publication, deltas of what changed since a
 * cursor (a name that disappeared, which the fetcher never does, forces a full snapshot), long-polls.
 */
export function fakeSource(): FakeSource {
  let files: readonly CatalogEntry[] = [];
  let gen = 0;
  /** Below this cursor a delta cannot be answered (a name disappeared). */
  let resetBelow = 0;
  const log: { gen: number; name?: string; site?: string; path?: string }[] = [];
  const sites = new Map<string, readonly ConfigEntry[]>([['default', []]]);
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const src: FakeSource = {
    description: 'fake',
    blobs: new Map(),
    failAfter: new Map(),
    opened: [],
    calls: [],
    states: new Map(),
    stateCalls: [],
    reports: [],
    async report(report) {
      src.reports.push(report);
    },
    publish(entries, announce = true) {
      gen++;
      const before = new Map(files.map((f) => [f.name, f]));
      for (const e of entries) if (announce && !same(before.get(e.name), e)) log.push({ gen, name: e.name });
      if (files.some((f) => !entries.some((e) => e.name === f.name))) resetBelow = gen;
      files = entries;
    },
    publishConfigs(site, entries) {
      gen++;
      const before = new Map((sites.get(site) ?? []).map((c) => [c.path, c]));
      for (const e of entries) if (!same(before.get(e.path), e)) log.push({ gen, site, path: e.path });
      if ([...before.keys()].some((p) => !entries.some((e) => e.path === p))) resetBelow = gen;
      sites.set(site, entries);
    },
    async changes(site, since, waitSeconds = 0, signal) {
      if (site !== null && !sites.has(site)) throw new UnknownSiteError(`404 site ${JSON.stringify(site)} is unknown`);
      const record = (answer: FakeSource['calls'][number]['answer']) => src.calls.push({ site, since, answer });
      const configsOf = (s: string | null) => (s === null ? [] : (sites.get(s) ?? []));
      // Long-polls like the fetcher: holds an unchanged feed until it changes, the wait ends, or the abort.
      const deadline = Date.now() + waitSeconds * 1000;
      for (;;) {
        const from = since === null ? null : Number(since);
        if (from === null || from < resetBelow || from > gen) {
          record('complete');
          return snapshot(true, files, configsOf(site));
        }
        const news = log.filter((e) => e.gen > from && (e.name !== undefined || e.site === site));
        if (news.length > 0) {
          record('delta');
          const names = new Set(news.map((e) => e.name));
          const paths = new Set(news.map((e) => e.path));
          return snapshot(
            false,
            files.filter((f) => names.has(f.name)),
            configsOf(site).filter((c) => paths.has(c.path)),
          );
        }
        if (Date.now() >= deadline || signal?.aborted) {
          record('not-modified');
          return 'not-modified';
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      function snapshot(complete: boolean, f: readonly CatalogEntry[], c: readonly ConfigEntry[]): Changes {
        return { cursor: String(gen), complete, site, files: f, configs: c };
      }
    },
    async fileState(name) {
      src.stateCalls.push(name);
      const entry = files.find((f) => f.name === name);
      const state = src.states.get(name) ?? (entry ? 'ready' : null);
      return state === null ? null : { state, version: entry?.version ?? null };
    },
    openBlob(entry, offset) {
      src.opened.push({ sha256: entry.sha256, offset });
      const bytes = src.blobs.get(entry.sha256);
      if (!bytes) return Promise.reject(new Error(`no blob ${entry.sha256}`));
      const failAt = src.failAfter.get(entry.sha256);
      src.failAfter.delete(entry.sha256);
      return Promise.resolve(
        (async function* () {
          // Small chunks so a failure can land mid-stream.
          for (let at = offset; at < bytes.byteLength; at += 3) {
            const end = Math.min(at + 3, bytes.byteLength);
            if (failAt !== undefined && end > failAt) throw new Error('ECONNRESET simulated');
            yield bytes.subarray(at, end);
          }
        })(),
      );
    },
  };
  return src;
}

/** A config catalog entry for `content` at `path` (a tombstone when `deleted`). */
export function configFor(path: string, content: string, deleted = false): ConfigEntry {
  const sha = sha256(content);
  return {
    path,
    deleted,
    sha256: sha,
    size: Buffer.byteLength(content),
    key: `data/${sha}`,
    updatedAt: '2024-01-01T00:00:00.000Z',
  };
}

/** Publishes a site's configs and registers their contents as blobs. */
export function serveConfigs(src: FakeSource, site: string, items: readonly (readonly [ConfigEntry, string])[]): void {
  for (const [e, content] of items) src.blobs.set(e.sha256, new TextEncoder().encode(content));
  src.publishConfigs(
    site,
    items.map(([e]) => e),
  );
}

/** Publishes entries and registers their contents as blobs. */
export function serve(src: FakeSource, items: readonly [CatalogEntry, string][]): void {
  for (const [e, content] of items) src.blobs.set(e.sha256, new TextEncoder().encode(content));
  src.publish(items.map(([e]) => e));
}

export function memoryLogger(): Logger & { lines: { level: string; msg: string; fields?: unknown }[] } {
  const lines: { level: string; msg: string; fields?: unknown }[] = [];
  const at = (level: string) => (msg: string, fields?: unknown) => void lines.push({ level, msg, fields });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Every path under `dir` (relative, sorted), with `/` after directories and `@` after symlinks; never follows links. */
export async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const rel = relative(dir, p);
      if (e.isSymbolicLink()) out.push(`${rel}@`);
      else if (e.isDirectory()) {
        out.push(`${rel}/`);
        await walk(p);
      } else out.push(rel);
    }
  }
  await walk(dir);
  return out.sort();
}

export async function inode(path: string): Promise<number> {
  return (await lstat(path)).ino;
}
