import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/core/errors.js';
import { createApp } from '../../../src/http/app.js';
import { createNodeAppDeps } from '../../../src/runtime/node/app-deps.js';
import { openWriterStore } from '../../../src/runtime/node/writer-store.js';
import { createMemoryStore } from '../../../src/storage/memory-store.js';
import type { OpenedStore } from '../../../src/storage/store-url.js';

// The probe itself (really writing twice and reading back, against RGW and against a server that ignores
// If-None-Match) is tested in test/storage/s3-store.test.ts; this is the policy applied to its result.
const opened = (honoured: boolean): OpenedStore => ({
  store: createMemoryStore(),
  description: 's3://b/p/',
  directory: null,
  createOnly: { honoured, detail: honoured ? 'second create refused with 412' : 'second create succeeded' },
  staleWrites: null,
});

function logger() {
  const lines: string[] = [];
  const log = (msg: string) => void lines.push(msg);
  return { lines, logger: { debug: log, info: log, warn: log, error: log } };
}

describe('writers on a store that ignores create-only writes', () => {
  it('refuses to start, naming --store and --accept-single-writer, and logs it loudly', async () => {
    const { lines, logger: l } = logger();
    const attempt = openWriterStore({ store: 's3://b/p', 'accept-single-writer': false }, l, async () => opened(false));
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toThrow(/--store: .*does not honour create-only.*--accept-single-writer/s);
    expect(lines.join('\n')).toMatch(/IGNORES CREATE-ONLY/);
  });

  it('runs when the operator accepts a single writer, and /healthz says degraded', async () => {
    const { lines, logger: l } = logger();
    const got = await openWriterStore({ store: 's3://b/p', 'accept-single-writer': true }, l, async () =>
      opened(false),
    );
    expect(lines.join('\n')).toMatch(/IGNORES CREATE-ONLY/);
    const { deps, close } = createNodeAppDeps({
      store: got.store,
      settings: {
        'verify-tls': true,
        'connect-timeout': 5,
        'headers-timeout': 5,
        'idle-timeout': 5,
        'max-redirects': 5,
        'keep-versions': 3,
        'lease-ttl': 30,
      },
      logger: l,
      sites: [{ name: 'default', serverName: '' }],
      createOnly: got.createOnly,
    });
    try {
      const health = (await (await createApp(deps).request('/healthz')).json()) as Record<string, unknown>;
      expect(health).toMatchObject({ status: 'degraded', createOnly: { honoured: false } });
      expect(String(health.warning)).toMatch(/exactly one writer/);
    } finally {
      await close();
    }
  });

  it('is silent and ok when create-only is honoured', async () => {
    const { lines, logger: l } = logger();
    await openWriterStore({ store: 's3://b/p', 'accept-single-writer': false }, l, async () => opened(true));
    expect(lines).toEqual([]);
  });
});

describe('a writer whose store cannot be written at all', () => {
  it('says so, with the settings to check, instead of blaming create-only support', async () => {
    const { logger: l } = logger();
    const broken: OpenedStore = {
      ...opened(false),
      createOnly: { honoured: false, failed: true, detail: 'the first create-only write failed: Region is missing' },
    };
    const attempt = openWriterStore({ store: 's3://b/p', 'accept-single-writer': true }, l, async () => broken);
    await expect(attempt).rejects.toThrow(/cannot write to s3:\/\/b\/p\/: .*Region is missing.*AWS_REGION/s);
  });
});
