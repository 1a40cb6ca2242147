/**
 * `--tokens-file` rotation without a restart (runtime/node/tokens.ts), against real files in a temp dir: noticed by
 * fs.watch (in-place writes and rename-replace) and, with fs.watch off, by the periodic stat alone; a broken or
 * missing file keeps the previous tokens and logs one error.
 */
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTokenSet, hashToken, type TokenRecord } from '../../../src/core/auth.js';
import type { LogFields, Logger } from '../../../src/core/ports.js';
import { nodeSha256 } from '../../../src/runtime/node/hasher.js';
import { createTokensReloader } from '../../../src/runtime/node/tokens.js';
import { sha256 } from '../../helpers/api.js';
import { waitFor } from '../../helpers/wait.js';

const record = (id: string, token: string): TokenRecord => ({
  id,
  sha256: sha256(token),
  scopes: ['read'],
});
const doc = (...records: TokenRecord[]) => JSON.stringify({ tokens: records });

describe('createTokensReloader', () => {
  let dir: string;
  let path: string;
  let logs: { level: string; msg: string; fields: LogFields }[];
  let stop: () => void = () => {};
  const logger: Logger = {
    debug: (msg, fields = {}) => void logs.push({ level: 'debug', msg, fields }),
    info: (msg, fields = {}) => void logs.push({ level: 'info', msg, fields }),
    warn: (msg, fields = {}) => void logs.push({ level: 'warn', msg, fields }),
    error: (msg, fields = {}) => void logs.push({ level: 'error', msg, fields }),
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pxecache-tokens-'));
    path = join(dir, 'tokens.json');
    logs = [];
  });
  afterEach(async () => {
    stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(opts: { fsWatch?: boolean; pollMs?: number; insecureNoAuth?: boolean } = {}) {
    const text = doc(record('old', 'pxc_old'));
    await writeFile(path, text);
    const tokens = createTokenSet([record('old', 'pxc_old')]);
    const reloader = createTokensReloader({
      file: { path, text },
      list: undefined,
      tokens,
      insecureNoAuth: opts.insecureNoAuth ?? false,
      logger,
    });
    stop = reloader.watch({ pollMs: opts.pollMs ?? 100, fsWatch: opts.fsWatch ?? true });
    const ids = () => tokens.current().map((t) => t.id);
    return { tokens, reloader, ids };
  }
  const idsBecome = (ids: () => string[], expected: string[]) =>
    waitFor(`tokens ${expected.join(',')}`, async () => ({ done: ids().join() === expected.join(), value: ids() }));

  it('applies an in-place rewrite and a rename-replace, logging added, removed and changed ids', async () => {
    const { ids } = await start({ pollMs: 60_000 });
    await writeFile(path, doc(record('old', 'pxc_old-rotated'), record('new', 'pxc_new')));
    await idsBecome(ids, ['old', 'new']);
    expect(logs.find((l) => l.msg === 'tokens reloaded')?.fields).toMatchObject({
      reason: 'change',
      tokens: 2,
      added: ['new'],
      removed: [],
      changed: ['old'],
    });
    // Config management writes a temp file and renames it over the old one: a watch on the file itself would miss it.
    await writeFile(join(dir, 'tokens.json.tmp'), doc(record('third', 'pxc_third')));
    await rename(join(dir, 'tokens.json.tmp'), path);
    await idsBecome(ids, ['third']);
  });

  it('notices a change by the periodic stat alone when fs.watch is unavailable', async () => {
    const { ids } = await start({ fsWatch: false, pollMs: 50 });
    await writeFile(path, doc(record('polled', 'pxc_polled')));
    await idsBecome(ids, ['polled']);
  });

  it('keeps the previous tokens when the file breaks or disappears, logging one error per broken content', async () => {
    const { ids, tokens } = await start({ pollMs: 50 });
    await writeFile(path, '{"tokens": [');
    await waitFor('an error', async () => ({ done: logs.some((l) => l.level === 'error'), value: logs }));
    await writeFile(path, doc({ id: 'bad id', sha256: 'x', scopes: ['read'] } as unknown as TokenRecord));
    await waitFor('a second error', async () => {
      const errors = logs.filter((l) => l.level === 'error');
      return { done: errors.length === 2, value: errors };
    });
    await rm(path);
    await waitFor('a third error', async () => {
      const errors = logs.filter((l) => l.level === 'error');
      return { done: errors.length === 3, value: errors };
    });
    // A few more stat periods: the same broken state is not reported again.
    await new Promise((r) => setTimeout(r, 300));
    const errors = logs.filter((l) => l.level === 'error');
    expect(errors.map((e) => e.msg)).toEqual(Array(3).fill('tokens-file reload failed: keeping the previous tokens'));
    expect(errors[0]?.fields['issues']).toEqual([expect.stringMatching(/not JSON/)]);
    expect(errors[1]?.fields['issues']).toEqual([
      expect.stringMatching(/id "bad id" must be/),
      expect.stringMatching(/sha256 must be/),
    ]);
    expect(errors[2]?.fields['issues']).toEqual([expect.stringMatching(/cannot read .*ENOENT/)]);
    expect(ids()).toEqual(['old']);
    expect(tokens.current()[0]?.sha256).toBe(await hashToken('pxc_old', nodeSha256));
    // Fixed: applies again.
    await writeFile(path, doc(record('fixed', 'pxc_fixed')));
    await idsBecome(ids, ['fixed']);
  });

  it('refuses tokens appearing under --insecure-no-auth (the start-up rule), keeping the previous set', async () => {
    const { reloader, ids } = await start({ insecureNoAuth: true, pollMs: 60_000 });
    stop();
    await writeFile(path, doc(record('sneaky', 'pxc_sneaky')));
    await reloader.reload('SIGHUP');
    expect(ids()).toEqual(['old']);
    expect(logs.find((l) => l.level === 'error')?.fields['issues']).toEqual([
      expect.stringMatching(/^--insecure-no-auth: contradicts/),
    ]);
  });

  it('re-reads on SIGHUP even when unchanged, and says so when there is no file', async () => {
    const { reloader } = await start({ pollMs: 60_000 });
    stop();
    await reloader.reload('SIGHUP');
    expect(logs.filter((l) => l.msg === 'tokens reloaded').map((l) => l.fields)).toEqual([
      expect.objectContaining({ reason: 'SIGHUP', tokens: 1, added: [], removed: [], changed: [] }),
    ]);
    const none = createTokensReloader({
      file: undefined,
      list: undefined,
      tokens: createTokenSet([]),
      insecureNoAuth: false,
      logger,
    });
    await none.reload('SIGHUP');
    expect(logs.at(-1)?.msg).toBe('tokens not reloaded: no --tokens-file to re-read');
  });
});
