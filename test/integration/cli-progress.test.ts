/**
 * Progress of the built CLI with stderr not a terminal (a log, CI): `pxecache fetch` from a real upstream trickling
 * a few MiB writes a start line, intermediate lines and a done line with bytes and rate; `agent --once` does the same
 * for its blob downloads; `--no-progress` / PXECACHE_PROGRESS=false writes none, and a bad value is exit 2.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';

const MiB = 1024 * 1024;
const PREFIX = 'boot/alma-9-Progress';
const NAME = `${PREFIX}-initrd.img`;

/** stderr without the JSON log lines. */
const progressLines = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l && !l.startsWith('{'))
    .map((l) => l.trim());

describe('CLI progress on a non-terminal stderr', () => {
  let upstream: Upstream;
  let dir: string;
  let store: string;

  beforeAll(async () => {
    upstream = await createUpstream();
    // 4 MiB in 64 KiB chunks 15 ms apart: about a second, long enough for every tenth to be seen.
    upstream.set('/initrd.img', randomBytes(4 * MiB), { chunkSize: 64 * 1024, chunkDelayMs: 15 });
    upstream.set('/other.img', randomBytes(2 * MiB));
    dir = await mkdtemp(join(tmpdir(), 'pxecache-progress-'));
    store = `file:${join(dir, 'store')}`;
  });
  afterAll(async () => {
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('pxecache fetch writes start, intermediate and done lines, and stdout keeps only the status', async () => {
    const r = await runCli(['fetch', '--store', store, '--prefix', PREFIX, '--url', upstream.url('/initrd.img')]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { state: string }).state).toBe('ready');
    const lines = progressLines(r.stderr);
    expect(lines[0]).toBe(`${NAME}: started, 4.0 MiB`);
    const middle = lines.slice(1, -1);
    expect(middle.length).toBeGreaterThanOrEqual(5);
    const percents = middle.map((l) => {
      const m = /^(\S+): [\d.]+ (?:KiB|MiB) of 4\.0 MiB \((\d+)%\), [\d.]+ (?:KiB|MiB)\/s, ETA \d+:\d\d$/.exec(l);
      expect(m, l).not.toBeNull();
      expect(m?.[1]).toBe(NAME);
      return Number(m?.[2]);
    });
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(lines.at(-1)).toMatch(new RegExp(`^${NAME}: done, 4\\.0 MiB in [\\d.]+ s, [\\d.]+ MiB/s$`));
  });

  it('pxecache agent --once writes a start and a done line per blob download', async () => {
    const root = join(dir, 'root');
    const r = await runCli(['agent', '--once', '--source', store, '--tftp-root', root]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`updated   ${NAME}`);
    const lines = progressLines(r.stderr);
    expect(lines[0]).toBe(`${NAME}: started, 4.0 MiB`);
    expect(lines.at(-1)).toMatch(new RegExp(`^${NAME}: done, 4\\.0 MiB in [\\d.]+ s, [\\d.]+ [KMG]iB/s$`));
  });

  it('--no-progress and PXECACHE_PROGRESS=false write no progress; a bad value is exit 2 naming the flag', async () => {
    const fetched = await runCli(
      ['fetch', '--store', store, '--prefix', 'boot/quiet', '--url', upstream.url('/other.img')],
      { PXECACHE_PROGRESS: 'false' },
    );
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(progressLines(fetched.stderr)).toEqual([]);
    const synced = await runCli([
      'agent',
      '--once',
      '--no-progress',
      '--source',
      store,
      '--tftp-root',
      join(dir, 'r2'),
    ]);
    expect(synced.code, synced.stderr).toBe(0);
    expect(synced.stdout).toContain('updated   boot/quiet-other.img');
    expect(progressLines(synced.stderr)).toEqual([]);
    const bad = await runCli(['fetch', '--store', store, '--prefix', 'boot/x', '--url', upstream.url('/other.img')], {
      PXECACHE_PROGRESS: 'maybe',
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--progress');
  });
});
