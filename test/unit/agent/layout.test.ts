import { describe, expect, it } from 'vitest';
import { entryPaths, isOwnTarget, isTmpName, tmpName, versionOfTarget } from '../../../src/agent/layout.js';

const V = '0123456789abcdef';

describe('layout', () => {
  it('spells the DESIGN layout with a relative link target', () => {
    const p = entryPaths('/srv/tftp', 'boot/centos-AbCd-vmlinuz', V, 'vmlinuz');
    expect(p).toEqual({
      dir: '/srv/tftp/boot',
      link: '/srv/tftp/boot/centos-AbCd-vmlinuz',
      versionsDir: '/srv/tftp/boot/centos-AbCd-vmlinuz-orig',
      versionDir: `/srv/tftp/boot/centos-AbCd-vmlinuz-orig/${V}`,
      file: `/srv/tftp/boot/centos-AbCd-vmlinuz-orig/${V}/vmlinuz`,
      linkTarget: `centos-AbCd-vmlinuz-orig/${V}/vmlinuz`,
      dirComponents: ['boot'],
      versionDirComponents: ['boot', 'centos-AbCd-vmlinuz-orig', V],
    });
    expect(entryPaths('/r', 'top', V, 'f').linkTarget).toBe(`top-orig/${V}/f`);
  });

  it.each([
    ['../x', V, 'f'],
    ['/abs', V, 'f'],
    ['a/b-orig/c', V, 'f'],
    ['a/./b', V, 'f'],
    ['grub2/x', V, 'f'],
    ['boot/x', 'ABCDEF0123456789', 'f'],
    ['boot/x', '../../etc', 'f'],
    ['boot/x', V, '..'],
    ['boot/x', V, 'a/b'],
    ['boot/x', V, '.pxecache-tmp-1'],
  ])('refuses name %j version %j basename %j', (name, version, basename) => {
    expect(() => entryPaths('/r', name, version, basename)).toThrow();
  });

  it('accepts a basename that is a reserved first directory elsewhere', () => {
    expect(entryPaths('/r', 'boot/x-grub', V, 'grub').file).toBe(`/r/boot/x-grub-orig/${V}/grub`);
  });

  it('recognises its own link targets and temporaries', () => {
    expect(versionOfTarget('boot/x', `x-orig/${V}/vmlinuz`)).toBe(V);
    expect(versionOfTarget('boot/x', `y-orig/${V}/vmlinuz`)).toBeNull();
    expect(versionOfTarget('boot/x', `x-orig/nothex/vmlinuz`)).toBeNull();
    expect(isOwnTarget('x', 'x-orig/old/whatever')).toBe(true);
    expect(isOwnTarget('x', 'x-orig/../../etc/passwd')).toBe(false);
    expect(isOwnTarget('x', '/srv/tftp/boot/x-orig/v/f')).toBe(false);
    expect(isTmpName(tmpName())).toBe(true);
    expect(tmpName()).not.toBe(tmpName());
  });
});
