/** Freshness of a name at a site, and the names x sites matrix (core/site-reports.ts), from fixed clocks. */
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.js';
import type { CatalogEntry, FileStatus } from '../../../src/core/records.js';
import {
  freshnessOf,
  parseSiteReport,
  readSiteReports,
  siteMatrix,
  writeSiteReport,
  type SiteReport,
} from '../../../src/core/site-reports.js';
import { createMemoryStore } from '../../../src/storage/memory-store.js';

const T0 = Date.parse('2026-01-01T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const V1 = '1111111111111111';
const V2 = '2222222222222222';

const entry = (name: string, version: string, fetchedAt = T0): CatalogEntry => ({
  name,
  generation: 1,
  version,
  sha256: version.repeat(4),
  size: 10,
  basename: 'vmlinuz',
  url: `http://up/${name}`,
  fetchedAt: iso(fetchedAt),
  key: 'data/x',
  versions: [version],
});

const report = (over: Partial<SiteReport> = {}): SiteReport => ({
  site: 'east',
  agent: { id: 'edge-1', version: '0.1.0' },
  at: iso(T0 + 10_000),
  lastSyncAt: iso(T0 + 5_000),
  lastSyncOk: true,
  cursor: '7',
  files: [{ name: 'boot/a-vmlinuz', version: V1, state: 'synced' }],
  configs: { ok: true, failed: 0 },
  errors: [],
  disk: { freeBytes: 10, totalBytes: 20 },
  intervalSeconds: 60,
  ...over,
});

describe('freshnessOf', () => {
  const e = entry('boot/a-vmlinuz', V1);
  const now = T0 + 20_000;

  it('is up-to-date when the link points to the catalog version', () => {
    expect(freshnessOf(e, report(), now)).toBe('up-to-date');
  });

  it('is unknown without a report, or once the report is older than 3 intervals + 60 s', () => {
    expect(freshnessOf(e, null, now)).toBe('unknown');
    const at = T0 + 10_000;
    expect(freshnessOf(e, report(), at + 240_000)).toBe('up-to-date');
    expect(freshnessOf(e, report(), at + 240_001)).toBe('unknown');
    expect(freshnessOf(e, report({ intervalSeconds: 1 }), at + 63_001)).toBe('unknown');
  });

  it('is failed when the agent failed the name, whatever the version', () => {
    const files = [{ name: e.name, version: V1, state: 'failed' as const, message: 'sha256 mismatch' }];
    expect(freshnessOf(entry(e.name, V2), report({ files }), now)).toBe('failed');
    expect(freshnessOf(e, report({ files }), now)).toBe('failed');
  });

  it('is syncing while an alive agent has not finished a pass since the publication, or holds the set', () => {
    const newer = entry(e.name, V2, T0 + 8_000); // published after the last pass started
    expect(freshnessOf(newer, report(), now)).toBe('syncing');
    const held = [{ name: e.name, version: V1, state: 'held' as const }];
    expect(freshnessOf(entry(e.name, V2, T0), report({ files: held }), now)).toBe('syncing');
    // A name the agent has not linked yet (new in the catalog) is syncing the same way.
    expect(freshnessOf(entry('boot/new-vmlinuz', V2, T0 + 8_000), report(), now)).toBe('syncing');
  });

  it('is behind when a pass after the publication did not bring it, the last pass failed, or heartbeats stopped', () => {
    const older = entry(e.name, V2, T0); // published before the last pass started
    expect(freshnessOf(older, report(), now)).toBe('behind');
    const newer = entry(e.name, V2, T0 + 8_000);
    expect(freshnessOf(newer, report({ lastSyncOk: false }), now)).toBe('behind');
    expect(freshnessOf(newer, report({ lastSyncAt: null, lastSyncOk: false }), now)).toBe('behind');
    // Two intervals + 5 s without a report: not working on it, but not stale yet.
    expect(freshnessOf(newer, report(), T0 + 10_000 + 125_001)).toBe('behind');
    expect(freshnessOf(newer, report(), T0 + 10_000 + 125_000)).toBe('syncing');
  });
});

describe('siteMatrix', () => {
  it('gives every name (sorted) a cell per site with the linked version, freshness and failure message', () => {
    const entries = [entry('boot/b-vmlinuz', V2), entry('boot/a-vmlinuz', V1)];
    const east = report({
      files: [
        { name: 'boot/a-vmlinuz', version: V1, state: 'synced' },
        { name: 'boot/b-vmlinuz', version: V1, state: 'failed', message: 'disk full' },
      ],
    });
    const status = { name: 'boot/a-vmlinuz', state: 'ready' } as FileStatus;
    const rows = siteMatrix(
      entries,
      new Map([[status.name, status]]),
      [
        { name: 'east', serverName: '', report: east },
        { name: 'west', serverName: '10.0.0.2', report: null },
      ],
      T0 + 20_000,
    );
    expect(rows.map((r) => r.name)).toEqual(['boot/a-vmlinuz', 'boot/b-vmlinuz']);
    expect(rows[0]!.status).toBe(status);
    expect(rows[1]!.status).toBeNull();
    expect(rows[0]!.sites).toEqual({
      east: { version: V1, freshness: 'up-to-date' },
      west: { version: null, freshness: 'unknown' },
    });
    expect(rows[1]!.sites['east']).toEqual({ version: V1, freshness: 'failed', message: 'disk full' });
  });
});

describe('site report records', () => {
  it('round-trips through the store, one per site, null for a site that never reported', async () => {
    const store = createMemoryStore();
    await writeSiteReport(store, report());
    await writeSiteReport(store, report({ cursor: '8' }));
    const [east, west] = await readSiteReports(store, ['east', 'west']);
    expect(east?.cursor).toBe('8');
    expect(west).toBeNull();
  });

  it('names the first bad field of a report', () => {
    const bad = (body: unknown) => {
      try {
        parseSiteReport(body);
      } catch (err) {
        return err instanceof InputError ? err.field : String(err);
      }
      return 'accepted';
    };
    expect(bad(report())).toBe('accepted');
    expect(bad({ ...report(), disk: { freeBytes: -1, totalBytes: 2 } })).toBe('disk.freeBytes');
    expect(bad({ ...report(), at: 'yesterday' })).toBe('at');
    expect(bad({ ...report(), files: [{ name: 'x', version: null }] })).toBe('files[0].state');
    expect(bad(null)).toBe('body');
  });
});
