/**
 * The Node logger (pino): info lines gathered and written once per event-loop turn, a warning written at once after
 * everything before it, nothing lost when the process exits right after logging; JSON lines unless the stream is a
 * terminal (or `--log-format pretty`).
 */
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createNodeLogger } from '../../../src/runtime/node/logger.js';

function capture() {
  const writes: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      writes.push(chunk.toString());
      done();
    },
  });
  return { writes, stream };
}
const msgs = (writes: readonly string[]) =>
  writes.flatMap((w) => w.trim().split('\n')).map((l) => (JSON.parse(l) as { msg: string }).msg);

describe('node logger', () => {
  it('writes a turn of info lines in one write, in order, as JSON lines', async () => {
    const { writes, stream } = capture();
    const logger = createNodeLogger({ level: 'info', stream });
    for (let i = 0; i < 100; i++) logger.info(`line ${i}`, { i });
    logger.debug('below the level');
    expect(writes).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    expect(writes).toHaveLength(1);
    expect(msgs(writes)).toEqual(Array.from({ length: 100 }, (_, i) => `line ${i}`));
  });

  it('writes a warning at once, after the lines logged before it', () => {
    const { writes, stream } = capture();
    const logger = createNodeLogger({ level: 'debug', stream });
    logger.debug('one');
    logger.info('two');
    logger.error('three', { code: 'x' });
    expect(msgs(writes)).toEqual(['one', 'two', 'three']);
  });

  it('loses nothing when the process exits in the same turn', () => {
    // The built module (npm test builds first), in a plain node process.
    const logger = fileURLToPath(new URL('../../../dist/runtime/node/logger.js', import.meta.url));
    const script =
      `const { createNodeLogger } = await import(${JSON.stringify(logger)});` +
      `const log = createNodeLogger({ level: 'info' }); log.info('before exit', { n: 1 }); process.exit(3);`;
    let stderr = '';
    try {
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { stdio: 'pipe' });
    } catch (err) {
      const e = err as { status: number; stderr: Buffer };
      expect(e.status).toBe(3);
      stderr = e.stderr.toString();
    }
    expect(msgs([stderr])).toEqual(['before exit']);
  });

  it('writes JSON lines with the level as a word, an ISO time and the fields', async () => {
    const { writes, stream } = capture();
    createNodeLogger({ level: 'info', stream }).info('published', { name: 'boot/x', requestId: 'r-1' });
    await new Promise((r) => setImmediate(r));
    const line = JSON.parse(writes.join('')) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 'info', msg: 'published', name: 'boot/x', requestId: 'r-1' });
    expect(new Date(String(line['time'])).toISOString()).toBe(line['time']);
  });

  it('is human-readable on a terminal (auto) or when asked (pretty), and JSON when asked on a terminal', () => {
    const tty = () => {
      const c = capture();
      return { ...c, stream: Object.assign(c.stream, { isTTY: true }) };
    };
    const auto = tty();
    createNodeLogger({ level: 'info', stream: auto.stream }).warn('lease lost', { requestId: 'r-2' });
    const pretty = capture();
    createNodeLogger({ level: 'info', format: 'pretty', stream: pretty.stream }).warn('lease lost', { n: 1 });
    const json = tty();
    createNodeLogger({ level: 'info', format: 'json', stream: json.stream }).warn('lease lost');
    // eslint-disable-next-line no-control-regex
    const plain = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '');
    expect(plain(auto.writes.join(''))).toMatch(
      /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] WARN: lease lost .*"requestId":"r-2"/,
    );
    expect(pretty.writes.join('')).toMatch(/WARN: lease lost/);
    expect(() => JSON.parse(pretty.writes.join(''))).toThrow();
    expect(JSON.parse(json.writes.join(''))).toMatchObject({ level: 'warn', msg: 'lease lost' });
  });
});
