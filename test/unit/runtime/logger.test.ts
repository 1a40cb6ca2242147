/**
 * The Node logger: info lines gathered and written once per event-loop turn, a warning written at once after
 * everything before it, and nothing lost when the process exits right after logging.
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
});
