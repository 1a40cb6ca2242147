/**
 * The dashboard's acceptance test (issue 10 item 2, docs/dashboard.md): a real upstream serves three names, `pxecache
 * serve --sites east,west` requires tokens, and two real `pxecache agent` processes (`--site east`, `--site west`)
 * keep two TFTP roots that tftpd-hpa serves. Headless Chromium signs in, reads the matrix from the DOM and compares
 * every cell with GET /api/v1/sites and /api/v1/files, rolls the kernel back through its page's form and watches both
 * agents follow (reports, links, TFTP reads), then renders the matrix again with JavaScript disabled. Screenshots go
 * to test-artifacts/. Needs root, tftpd-hpa, tftp-hpa, Debian's chromium and the built CLI (`npm run build`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken, tokenListEntry } from '../../src/core/auth.js';
import type { Catalog, CatalogEntry, FileStatus } from '../../src/core/records.js';
import { freshnessOf, type SiteReport } from '../../src/core/site-reports.js';
import { nodeSha256 } from '../../src/runtime/node/hasher.js';
import { startAgentProcess, type AgentProcess } from '../reliability/agent-process.js';
import { startServeProcess, type ServeProcess } from '../helpers/serve-process.js';
import { assertTftpTools, startTftpd, tftpGet, type Tftpd } from '../helpers/tftp.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const SITES = ['east', 'west'] as const;
const TOKENS = { agent: 'pxc_dashboard-e2e-agent', admin: 'pxc_dashboard-e2e-admin' };
const PREFIX = 'boot/centos-9-AbCdEf012345';
/** Fetched as Foreman asks ({prefix, path}): the name is `<prefix>-<basename>`. */
const FILES = [
  { prefix: PREFIX, name: `${PREFIX}-vmlinuz`, path: '/centos/9/images/pxeboot/vmlinuz' },
  { prefix: PREFIX, name: `${PREFIX}-initrd.img`, path: '/centos/9/images/pxeboot/initrd.img' },
  { prefix: 'boot/ipxe', name: 'boot/ipxe-ipxe.efi', path: '/ipxe/ipxe.efi' },
] as const;
const KERNEL = FILES[0].name;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const versionOf = (bytes: Uint8Array) => sha256(bytes).slice(0, 16);

interface SiteView {
  readonly name: string;
  readonly report: SiteReport | null;
}

let base: string;
let upstream: Upstream;
let serve: ServeProcess;
let browser: Browser;
const roots = new Map<string, string>();
const tftpds = new Map<string, Tftpd>();
const agents: AgentProcess[] = [];
/** The kernel's two versions: the first, then the respin current when the agents start. */
const kernels = [randomBytes(400_000), randomBytes(420_000)] as const;

const api = async <T>(path: string): Promise<T> => {
  const res = await fetch(`${serve.url}${path}`, {
    headers: { authorization: `Bearer ${TOKENS.admin}` },
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
};

async function fetchName(file: (typeof FILES)[number]): Promise<void> {
  const res = await fetch(`${serve.url}/api/v1/fetch?wait=30`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ prefix: file.prefix, path: upstream.url(file.path) }),
  });
  const status = (await res.json()) as FileStatus;
  expect({ code: res.status, name: status.name }).toEqual({ code: 200, name: file.name });
}

/** Both sites have reported every name at its catalog version. */
async function waitSitesAt(expected: ReadonlyMap<string, string>, timeoutMs = 60_000): Promise<SiteView[]> {
  return waitFor(
    `sites ${SITES.join(', ')} reporting ${[...expected].map(([n, v]) => `${n}@${v}`).join(', ')}`,
    async () => {
      const sites = await api<SiteView[]>('/api/v1/sites');
      const held = (site: string) => sites.find((s) => s.name === site)?.report?.files ?? [];
      const done = SITES.every((site) =>
        [...expected].every(([name, version]) => held(site).some((f) => f.name === name && f.version === version)),
      );
      return { done, value: sites };
    },
    { timeoutMs, intervalMs: 250 },
  );
}

beforeAll(async () => {
  assertTftpTools();
  base = await mkdtemp(join(tmpdir(), 'pxecache-e2e-dashboard-'));
  await mkdir(ARTIFACTS, { recursive: true });
  upstream = await createUpstream();
  const list = [
    tokenListEntry({ id: 'agents', sha256: await hashToken(TOKENS.agent, nodeSha256), scopes: ['read'] }),
    tokenListEntry({ id: 'ops', sha256: await hashToken(TOKENS.admin, nodeSha256), scopes: ['admin'] }),
  ].join(',');
  serve = await startServeProcess(join(base, 'store'), [
    '--host',
    '127.0.0.1',
    '--sites',
    SITES.join(','),
    '--tokens',
    list,
  ]);

  upstream.set(FILES[0].path, kernels[0]);
  await fetchName(FILES[0]);
  upstream.set(FILES[0].path, kernels[1]);
  for (const [i, file] of FILES.entries()) {
    if (i > 0) upstream.set(file.path, randomBytes(100_000 + i * 50_000));
    await fetchName(file);
  }

  for (const site of SITES) {
    const root = join(base, `tftpboot-${site}`);
    await mkdir(root);
    roots.set(site, root);
    const args = ['--source', serve.url, '--tftp-root', root, '--site', site, '--interval', '0.5', '--wait', '5'];
    agents.push(startAgentProcess(args, { PXECACHE_TOKEN: TOKENS.agent }));
    tftpds.set(site, await startTftpd(root));
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 120_000);

afterAll(async () => {
  const errors: unknown[] = [];
  const attempt = async (fn: () => Promise<unknown>) => fn().catch((err: unknown) => errors.push(err));
  await attempt(async () => browser?.close());
  for (const agent of agents) await attempt(() => agent.kill());
  for (const tftpd of tftpds.values()) await attempt(() => tftpd.stop());
  await attempt(async () => serve?.stop());
  await attempt(async () => upstream?.close());
  if (base) await rm(base, { recursive: true, force: true });
  if (errors.length) throw new AggregateError(errors, 'dashboard e2e cleanup failed');
}, 60_000);

/** A new browser context signed in through the form (which works without JavaScript too). */
async function signedIn(javaScriptEnabled = true): Promise<Page> {
  const context = await browser.newContext({ javaScriptEnabled, viewport: { width: 1500, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${serve.url}/`);
  expect(new URL(page.url()).pathname).toBe('/dashboard/login');
  await page.fill('input[name="token"]', TOKENS.admin);
  await Promise.all([page.waitForURL(`${serve.url}/`), page.click('button[type="submit"]')]);
  return page;
}

interface MatrixRow {
  readonly name: string;
  readonly state: string;
  readonly version: string;
  readonly size: number;
  readonly cells: Record<string, { freshness: string; version: string }>;
}

/** The matrix as the DOM shows it: what an operator sees, read from the rendered page. */
async function readMatrix(page: Page): Promise<{ sites: string[]; rows: MatrixRow[] }> {
  const sites = await page.$$eval('.site[data-site]', (cards) => cards.map((c) => c.getAttribute('data-site') ?? ''));
  const rows = await page.$$eval('#matrix tbody tr', (trs) =>
    trs.map((tr) => {
      const text = (field: string) => tr.querySelector(`[data-field="${field}"]`)?.textContent?.trim() ?? '';
      const cells: Record<string, { freshness: string; version: string }> = {};
      for (const td of tr.querySelectorAll('td[data-freshness]')) {
        cells[td.getAttribute('data-site') ?? ''] = {
          freshness: td.getAttribute('data-freshness') ?? '',
          version: td.querySelector('.mono')?.textContent?.trim() ?? '',
        };
        // The freshness is written out, not only coloured.
        if (!td.textContent?.includes((td.getAttribute('data-freshness') ?? '').replaceAll('-', ' ')))
          throw new Error(`cell without its freshness text: ${td.outerHTML}`);
      }
      return {
        name: tr.getAttribute('data-name') ?? '',
        state: text('state'),
        version: text('version'),
        size: Number(tr.querySelector('[data-field="size"]')?.getAttribute('data-bytes')),
        cells,
      };
    }),
  );
  return { sites, rows };
}

/** The matrix the API implies: the catalog's names and each site's report through freshnessOf. */
async function expectedMatrix(now: number): Promise<MatrixRow[]> {
  const [catalog, sites] = await Promise.all([api<Catalog>('/api/v1/files'), api<SiteView[]>('/api/v1/sites')]);
  const statuses = await Promise.all(catalog.entries.map((e) => api<FileStatus>(`/api/v1/files/${e.name}`)));
  return [...catalog.entries]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((entry: CatalogEntry) => ({
      name: entry.name,
      state: statuses.find((s) => s.name === entry.name)?.state ?? '',
      version: entry.version,
      size: entry.size,
      cells: Object.fromEntries(
        SITES.map((site) => {
          const report = sites.find((s) => s.name === site)?.report ?? null;
          const held = report?.files.find((f) => f.name === entry.name)?.version ?? '-';
          return [site, { freshness: freshnessOf(entry, report, now), version: held }];
        }),
      ),
    }));
}

describe('dashboard in headless Chromium', () => {
  it('shows the matrix of three names x two sites that the API reports, fed by two real agents', async () => {
    const current = await api<Catalog>('/api/v1/files');
    expect(current.entries).toHaveLength(3);
    await waitSitesAt(new Map(current.entries.map((e) => [e.name, e.version])));
    for (const site of SITES) {
      const tftpd = tftpds.get(site) as Tftpd;
      expect(sha256((await tftpGet(tftpd.port, KERNEL)) ?? Buffer.alloc(0)), `TFTP read at ${site}`).toBe(
        sha256(kernels[1]),
      );
    }

    const page = await signedIn();
    const seen = await readMatrix(page);
    const expected = await expectedMatrix(Date.now());
    expect(seen.sites).toEqual([...SITES]);
    expect(seen.rows).toEqual(expected);
    expect(seen.rows.flatMap((r) => Object.values(r.cells).map((c) => c.freshness))).toEqual(
      Array(6).fill('up-to-date'),
    );
    // Each site's header: its agent's last report and free disk, as /api/v1/sites has them.
    for (const site of SITES) {
      const card = await page.locator(`.site[data-site="${site}"]`).innerText();
      expect(card).toMatch(/Last report: \d+ s ago/);
      expect(card).toMatch(/Free disk: [\d.]+ [KMGT]?i?B of [\d.]+ [KMGT]?i?B/);
    }
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-matrix.png'), fullPage: true });
    await page.context().close();
  }, 90_000);

  it('rolls a name back through its page and both agents follow', async () => {
    const page = await signedIn();
    await Promise.all([page.waitForURL(`**/files/${KERNEL}`), page.click(`a[href="/files/${KERNEL}"]`)]);
    const before = await api<FileStatus>(`/api/v1/files/${KERNEL}`);
    expect(await page.locator('[data-field="sha256"]').innerText()).toBe(before.sha256);
    const listed = await page.$$eval('#versions tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-version')));
    expect(listed).toEqual(before.versions.map((v) => v.version));
    expect(listed).toEqual([versionOf(kernels[1]), versionOf(kernels[0])]);

    const old = versionOf(kernels[0]);
    await Promise.all([
      page.waitForURL(`**/files/${KERNEL}?done=rolled-back`),
      page.click(`#versions tr[data-version="${old}"] button`),
    ]);
    expect(await page.locator('.notice').innerText()).toContain('Rolled back and pinned');
    const after = await api<FileStatus>(`/api/v1/files/${KERNEL}`);
    expect({ version: after.version, pinned: after.pinned?.version }).toEqual({ version: old, pinned: old });
    expect(await page.locator('[data-field="pinned"]').innerText()).toContain(old);

    // The agents follow: their reports, their links, and what tftpd serves.
    const catalog = await api<Catalog>('/api/v1/files');
    await waitSitesAt(new Map(catalog.entries.map((e) => [e.name, e.version])));
    for (const site of SITES) {
      expect(await readlink(join(roots.get(site) as string, KERNEL))).toBe(
        `centos-9-AbCdEf012345-vmlinuz-orig/${old}/vmlinuz`,
      );
      const bytes = await tftpGet((tftpds.get(site) as Tftpd).port, KERNEL);
      expect(sha256(bytes ?? Buffer.alloc(0)), `TFTP read at ${site}`).toBe(sha256(kernels[0]));
    }
    await page.reload();
    const rows = await page.$$eval('#sites tbody tr', (trs) =>
      trs.map((tr) => [tr.getAttribute('data-site'), tr.getAttribute('data-freshness')]),
    );
    expect(rows).toEqual(expect.arrayContaining(SITES.map((s) => [s, 'up-to-date'])));
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-name.png'), fullPage: true });

    await page.goto(`${serve.url}/`);
    const matrix = await readMatrix(page);
    expect(matrix.rows.find((r) => r.name === KERNEL)?.cells).toEqual(
      Object.fromEntries(SITES.map((s) => [s, { freshness: 'up-to-date', version: old }])),
    );
    await page.context().close();
  }, 90_000);

  it('renders the matrix with JavaScript disabled', async () => {
    const page = await signedIn(false);
    const seen = await readMatrix(page);
    expect(seen.sites).toEqual([...SITES]);
    expect(seen.rows.map((r) => r.name)).toEqual(FILES.map((f) => f.name).sort());
    expect(seen.rows.every((r) => SITES.every((s) => r.cells[s]?.freshness === 'up-to-date'))).toBe(true);
    expect(await page.locator('meta[http-equiv="refresh"]').getAttribute('content')).toBe('10');
    await page.context().close();
  }, 60_000);
});
