/**
 * Deferred directory fsyncs (DirSyncs): a first sync of thousands of names fsyncs thousands of directories at the
 * end of its download phase, which must not run out of file descriptors; one failure is reported after the rest.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { DirSyncs } from '../../../src/agent/safe-dirs.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDirs(count: number): Promise<string[]> {
  const base = await mkdtemp(join(tmpdir(), 'pxecache-dirsyncs-'));
  dirs.push(base);
  const made = Array.from({ length: count }, (_, i) => join(base, `d${i}`));
  for (const d of made) await mkdir(d);
  return made;
}

describe('DirSyncs', () => {
  it('fsyncs 2,000 directories in a process limited to 64 file descriptors', async () => {
    const made = await tempDirs(2000);
    // The built module (npm test builds first), in a node process with a low descriptor limit.
    const module = fileURLToPath(new URL('../../../dist/agent/safe-dirs.js', import.meta.url));
    const script =
      `const { DirSyncs } = await import(${JSON.stringify(module)});` +
      `const s = new DirSyncs(); for (const d of ${JSON.stringify(made)}) s.add(d);` +
      `await s.flush(); console.log('flushed');`;
    const out = execFileSync(
      'bash',
      ['-c', 'ulimit -n 64 && exec "$0" --input-type=module -e "$1"', process.execPath, script],
      {
        encoding: 'utf8',
      },
    );
    expect(out.trim()).toBe('flushed');
  });

  it('tries every directory and then throws the first failure', async () => {
    const made = await tempDirs(20);
    const syncs = new DirSyncs();
    for (const d of made) syncs.add(d);
    syncs.add(join(made[0] as string, 'missing'));
    await expect(syncs.flush()).rejects.toThrow(/ENOENT/);
    // Flushed means forgotten: the next flush has nothing to do.
    await expect(syncs.flush()).resolves.toBeUndefined();
  });
});
