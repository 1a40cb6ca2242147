/**
 * CatalogSource.fileState, which the agent asks for the members of a respin set before moving its links: over HTTP
 * (GET /api/v1/files/<name> of a real Node server) and straight from the store (readStatus), including the
 * `fetching` of a re-fetch in progress and null for a name the source does not know.
 */
import { serve } from '@hono/node-server';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpSource } from '../../src/agent/http-source.js';
import { createStoreSource } from '../../src/agent/store-source.js';
import type { CatalogSource } from '../../src/agent/source.js';
import { silentLogger } from '../../src/core/ports.js';
import { parseSites } from '../../src/core/sites.js';
import { createApp } from '../../src/http/app.js';
import { createNodeAppDeps } from '../../src/runtime/node/app-deps.js';
import { createFileStore } from '../../src/storage/file-store.js';
import { TEST_SETTINGS } from '../helpers/app-harness.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';

let dir: string;
let upstream: Upstream;
let close: () => Promise<void>;
let deps: ReturnType<typeof createNodeAppDeps>['deps'];
const sources: [string, CatalogSource][] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pxecache-it-state-'));
  upstream = await createUpstream();
  const store = createFileStore({ root: dir });
  const built = createNodeAppDeps({ store, settings: TEST_SETTINGS, logger: silentLogger, sites: parseSites('', '') });
  deps = built.deps;
  const server = serve({ fetch: createApp(deps).fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  const { port } = server.address() as AddressInfo;
  sources.push(['http', createHttpSource({ baseUrl: `http://127.0.0.1:${port}` })]);
  sources.push(['store', createStoreSource({ store, description: 'store', pollMs: 100 })]);
  close = async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await built.close();
  };
});

afterAll(async () => {
  await close();
  await upstream.close();
  await rm(dir, { recursive: true, force: true });
});

describe('CatalogSource.fileState', () => {
  it('answers ready, fetching during a re-fetch, and null for an unknown name', async () => {
    upstream.set('/os/vmlinuz', 'kernel v1');
    const first = await deps.fetcher.submit({ prefix: 'boot/s', path: upstream.url('/os/vmlinuz') });
    const published = await first.done;
    expect(published.state).toBe('ready');
    for (const [, source] of sources) {
      // The published version too: the agent holds a set whose member is newer at the source than in its view.
      expect(await source.fileState('boot/s-vmlinuz')).toEqual({ state: 'ready', version: published.version });
      expect(await source.fileState('boot/s-initrd.img')).toBeNull();
    }

    let release!: () => void;
    upstream.set('/os/vmlinuz', 'kernel v2 '.repeat(500), { bodyGate: new Promise<void>((r) => (release = r)) });
    const second = await deps.fetcher.submit({ prefix: 'boot/s', path: upstream.url('/os/vmlinuz') });
    try {
      for (const [kind, source] of sources) {
        const deadline = Date.now() + 5000;
        let state = (await source.fileState('boot/s-vmlinuz'))?.state;
        while (state !== 'fetching' && Date.now() < deadline) state = (await source.fileState('boot/s-vmlinuz'))?.state;
        expect({ kind, state }).toEqual({ kind, state: 'fetching' });
      }
    } finally {
      release();
    }
    const republished = await second.done;
    expect(republished.state).toBe('ready');
    for (const [, source] of sources)
      expect(await source.fileState('boot/s-vmlinuz')).toEqual({ state: 'ready', version: republished.version });
  });
});
