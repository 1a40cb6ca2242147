import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gcName, versionsToKeep } from '../../../src/agent/gc.js';
import { entryFor, tempRoot, tree } from '../../helpers/agent-fixtures.js';
import type { TempRoot } from '../../helpers/agent-fixtures.js';

const NAME = 'boot/x-vmlinuz';
const V = ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb', 'cccccccccccccccc', 'dddddddddddddddd'] as const;

let t: TempRoot;
beforeEach(async () => {
  t = await tempRoot();
});
afterEach(() => rm(t.base, { recursive: true, force: true }));

async function layout(versions: readonly string[], linkTo: string): Promise<void> {
  for (const v of versions) {
    await mkdir(join(t.root, 'boot', 'x-vmlinuz-orig', v), { recursive: true });
    await writeFile(join(t.root, 'boot', 'x-vmlinuz-orig', v, 'vmlinuz'), v);
  }
  await symlink(`x-vmlinuz-orig/${linkTo}/vmlinuz`, join(t.root, NAME));
}

/** A catalog entry whose versions list is `versions` (newest first); content does not matter to GC. */
function entry(versions: readonly string[]) {
  return { ...entryFor(NAME, 'whatever'), version: versions[0]!, versions };
}

describe('gc', () => {
  it('keeps the linked version, the previous one and the two newest', () => {
    expect([...versionsToKeep(entry([V[0], V[1], V[2], V[3]]), V[2])].sort()).toEqual([V[0], V[1], V[2], V[3]]);
    expect([...versionsToKeep(entry([V[0], V[1], V[2], V[3]]), V[0])].sort()).toEqual([V[0], V[1]]);
    expect([...versionsToKeep(entry([V[0]]), null)]).toEqual([V[0]]);
  });

  it('removes only unkept version directories and touches nothing else', async () => {
    await layout([V[0], V[1], V[2], V[3]], V[0]);
    const orig = join(t.root, 'boot', 'x-vmlinuz-orig');
    await mkdir(join(orig, 'not-a-version'));
    await writeFile(join(orig, 'eeeeeeeeeeeeeeee'), 'a file named like a version');
    await symlink(t.outside, join(orig, 'ffffffffffffffff'));
    await writeFile(join(t.outside, 'precious'), 'x');
    const removed = await gcName(t.root, entry([V[0], V[1], V[2], V[3]]));
    expect(removed.sort()).toEqual([V[2], V[3]]);
    expect(await tree(orig)).toEqual([
      `${V[0]}/`,
      `${V[0]}/vmlinuz`,
      `${V[1]}/`,
      `${V[1]}/vmlinuz`,
      'eeeeeeeeeeeeeeee',
      'ffffffffffffffff@',
      'not-a-version/',
    ]);
    expect(await tree(t.outside)).toEqual(['precious']);
  });

  it('never deletes what the link points to, even a version the catalog no longer lists', async () => {
    await layout([V[0], V[1], V[3]], V[3]);
    expect(await gcName(t.root, entry([V[0], V[1]]))).toEqual([]);
    await rm(join(t.root, NAME));
    await symlink(`x-vmlinuz-orig/${V[0]}/vmlinuz`, join(t.root, NAME));
    expect(await gcName(t.root, entry([V[0], V[1]]))).toEqual([V[3]]);
  });

  it('does not walk through a planted symlink to the versions directory', async () => {
    await mkdir(join(t.outside, V[3]), { recursive: true });
    await symlink(t.outside, join(t.root, 'boot'));
    expect(await gcName(t.root, entry([V[0], V[1]]))).toEqual([]);
    expect(await tree(t.outside)).toEqual([`${V[3]}/`]);
  });
});
