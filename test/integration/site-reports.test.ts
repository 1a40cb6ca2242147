/**
 * Site state (docs/sites.md) end to end: a real `pxecache serve --sites east,west` requiring tokens, two real agent
 * processes (east, west) syncing their own TFTP roots from it with read tokens, a real upstream with three names.
 * The reports are the agents' own (no fabricated heartbeat): versions read from the links, free disk from statfs.
 */
import { mkdtemp, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken, tokenListEntry } from '../../src/core/auth.js';
import { freshnessOf, type SiteInfo } from '../../src/core/site-reports.js';
import type { CatalogEntry, FileStatus } from '../../src/core/records.js';
import { nodeSha256 } from '../../src/runtime/node/hasher.js';
import { startAgentProcess, type AgentProcess } from '../reliability/agent-process.js';
import { startServeProcess, type ServeProcess } from '../helpers/serve-process.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';

const TOKENS = { east: 'pxc_read-east-agent', west: 'pxc_read-west-agent', ops: 'pxc_fetch-ops' };
const LIST = [
  tokenListEntry({ id: 'east', sha256: await hashToken(TOKENS.east, nodeSha256), scopes: ['read'] }),
  tokenListEntry({ id: 'west', sha256: await hashToken(TOKENS.west, nodeSha256), scopes: ['read'] }),
  tokenListEntry({ id: 'ops', sha256: await hashToken(TOKENS.ops, nodeSha256), scopes: ['fetch', 'read'] }),
].join(',');
const KEYS = ['alpha', 'beta', 'gamma'];
const NAMES = KEYS.map((k) => `boot/${k}-vmlinuz`);
/** Each name's upstream file: `boot/<key>-` + `/<key>/vmlinuz`. */
const pathOf = (name: string) => `/${name.slice('boot/'.length, -'-vmlinuz'.length)}/vmlinuz`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('site reports from two real agents', () => {
  let dir: string;
  let upstream: Upstream;
  let serve: ServeProcess;
  const agents = new Map<string, AgentProcess>();

  const api = (path: string, init: RequestInit = {}, token = TOKENS.ops) =>
    fetch(serve.url + path, { ...init, headers: { ...bearer(token), ...(init.headers as Record<string, string>) } });
  const sites = async () => (await (await api('/api/v1/sites')).json()) as SiteInfo[];
  const catalog = async () => ((await (await api('/api/v1/files')).json()) as { entries: CatalogEntry[] }).entries;
  const fetchName = async (name: string) => {
    const prefix = name.slice(0, -'-vmlinuz'.length);
    const res = await api('/api/v1/fetch?wait=20', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prefix, path: upstream.url(pathOf(name)) }),
    });
    const body = (await res.json()) as FileStatus;
    expect(res.status, JSON.stringify(body)).toBe(200);
    return body;
  };
  const startAgent = (site: string) => {
    const root = join(dir, `root-${site}`);
    const agent = startAgentProcess(
      ['--source', serve.url, '--tftp-root', root, '--site', site, '--interval', '0.2', '--report-interval', '1'],
      { PXECACHE_TOKEN: TOKENS[site as 'east' | 'west'] },
    );
    agents.set(site, agent);
    return agent;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pxecache-site-reports-'));
    upstream = await createUpstream();
    for (const name of NAMES) upstream.set(pathOf(name), `kernel of ${name}, first build`);
    serve = await startServeProcess(join(dir, 'store'), ['--sites', 'east,west', '--tokens', LIST]);
    for (const name of NAMES) await fetchName(name);
    startAgent('east');
    startAgent('west');
  }, 60_000);
  afterAll(async () => {
    for (const agent of agents.values()) await agent.kill();
    await serve?.stop();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('GET /api/v1/sites shows both agents with the versions their links point to and their free disk', async () => {
    const entries = await catalog();
    expect(entries.map((e) => e.name).sort()).toEqual(NAMES);
    const got = await waitFor(
      'both sites report every name up to date',
      async () => {
        const all = await sites();
        const now = Date.now();
        const done = ['east', 'west'].every((s) => {
          const report = all.find((x) => x.name === s)?.report ?? null;
          return entries.every((e) => freshnessOf(e, report, now) === 'up-to-date');
        });
        return { done, value: all };
      },
      { timeoutMs: 20_000 },
    );
    expect(got.map((s) => s.name)).toEqual(['default', 'east', 'west']);
    expect(got[0]?.report).toBeNull();
    for (const site of ['east', 'west']) {
      const report = got.find((s) => s.name === site)!.report!;
      expect(report.site).toBe(site);
      expect(report.intervalSeconds).toBe(1);
      expect(report.lastSyncOk).toBe(true);
      expect(report.configs).toEqual({ ok: true, failed: 0 });
      expect(report.disk!.totalBytes).toBeGreaterThan(0);
      expect(report.disk!.freeBytes).toBeGreaterThan(0);
      expect(report.disk!.freeBytes).toBeLessThanOrEqual(report.disk!.totalBytes);
      for (const e of entries) {
        const file = report.files.find((f) => f.name === e.name);
        expect(file).toEqual({ name: e.name, version: e.version, state: 'synced' });
        // The version is what the link in that agent's root points to.
        expect(await readlink(join(dir, `root-${site}`, e.name))).toContain(`/${e.version}/`);
      }
    }
  });

  it('heartbeats keep coming while nothing changes', async () => {
    const before = (await sites()).find((s) => s.name === 'east')!.report!.at;
    const after = await waitFor(
      'a newer east report',
      async () => {
        const at = (await sites()).find((s) => s.name === 'east')!.report!.at;
        return { done: at > before, value: at };
      },
      { timeoutMs: 5_000 },
    );
    expect(Date.parse(after)).toBeGreaterThan(Date.parse(before));
  });

  it('a stopped agent leaves its site behind on a respun name while the running one catches up', async () => {
    await agents.get('west')!.kill();
    agents.delete('west');
    const name = NAMES[1]!;
    upstream.set(pathOf(name), `kernel of ${name}, respun`);
    const respun = await fetchName(name);
    const entry = (await catalog()).find((e) => e.name === name)!;
    expect(entry.version).toBe(respun.version);
    const verdict = await waitFor(
      'east up to date and west behind',
      async () => {
        const all = await sites();
        const now = Date.now();
        const of = (s: string) => freshnessOf(entry, all.find((x) => x.name === s)!.report, now);
        return { done: of('east') === 'up-to-date' && of('west') === 'behind', value: [of('east'), of('west')] };
      },
      { timeoutMs: 20_000 },
    );
    expect(verdict).toEqual(['up-to-date', 'behind']);
    const west = (await sites()).find((s) => s.name === 'west')!.report!;
    expect(west.files.find((f) => f.name === name)!.version).not.toBe(entry.version);
    // A stopped agent's report goes stale: unknown after 3 intervals + 60 s.
    expect(freshnessOf(entry, west, Date.parse(west.at) + 64_000)).toBe('unknown');
  });

  it('refuses a report without a token (401), with a bad field (400 naming it), for an unknown site (404)', async () => {
    const report = (await sites()).find((s) => s.name === 'east')!.report!;
    const post = (site: string, body: unknown, headers: Record<string, string>) =>
      fetch(`${serve.url}/api/v1/sites/${site}/report`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
    expect((await post('east', report, {})).status).toBe(401);
    const bad = { ...report, files: [{ ...report.files[0], state: 'great' }] };
    const res = await post('east', bad, bearer(TOKENS.east));
    expect(res.status).toBe(400);
    const err = ((await res.json()) as { error: { field: string; message: string } }).error;
    expect(err.field).toBe('files[0].state');
    expect((await post('east', { ...report, site: 'west' }, bearer(TOKENS.east))).status).toBe(400);
    expect((await post('north', { ...report, site: 'north' }, bearer(TOKENS.east))).status).toBe(404);
    // The refused reports changed nothing; a read token's valid report is stored as sent.
    const marked = { ...report, agent: { id: 'by-hand', version: report.agent.version } };
    expect((await post('east', marked, bearer(TOKENS.east))).status).toBe(204);
    expect((await sites()).find((s) => s.name === 'east')!.report!.agent.id).toBe('by-hand');
  });
});
