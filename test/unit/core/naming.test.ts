import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/core/errors.js';
import { bootFileName, parentNames, urlBasename, validateName } from '../../../src/core/naming.js';
import { parseUpstreamUrl } from '../../../src/core/url-policy.js';

describe('bootFileName: smart-proxy boot_filename', () => {
  it.each([
    // smart-proxy test/tftp/tftp_test.rb: prefix ending in "/" joins without "-".
    ['a/b/c/', 'http://h/d/somefile', 'a/b/c/somefile'],
    ['a/b/c', 'http://h/d/somefile', 'a/b/c-somefile'],
    [
      'boot/centos-9-AbCdEfGhIjKl',
      'http://mirror/centos/9/images/pxeboot/vmlinuz',
      'boot/centos-9-AbCdEfGhIjKl-vmlinuz',
    ],
    [
      'boot/centos-9-AbCdEfGhIjKl',
      'http://mirror/centos/9/images/pxeboot/initrd.img',
      'boot/centos-9-AbCdEfGhIjKl-initrd.img',
    ],
    // Katello: boot/<repo-name>-<id>
    [
      'boot/Default_Organization-Library-centos-7',
      'https://k/pulp/content/x/images/pxeboot/vmlinuz',
      'boot/Default_Organization-Library-centos-7-vmlinuz',
    ],
    ['boot/t', 'http://h/vmlinuz?token=abc#frag', 'boot/t-vmlinuz'],
    ['boot/t', 'http://h/a%2Bb', 'boot/t-a+b'],
    ['boot/t', 'http://h/linux@1,2=3', 'boot/t-linux@1,2=3'],
    ['x', 'nfs://server/export/images/vmlinuz', 'x-vmlinuz'],
    ['boot/', 'http://h/pxeboot/initrd.img', 'boot/initrd.img'],
  ])('%s + %s -> %s', (prefix, url, name) => {
    expect(bootFileName(prefix, url).name).toBe(name);
  });

  it('keeps the basename as written, not as the URL parser normalises it', () => {
    expect(urlBasename('http://h/a/b/../vmlinuz')).toBe('vmlinuz');
    expect(urlBasename('http://h/a/vmlinuz/..')).toBe('..');
    expect(urlBasename('http://h/a/%2e%2e')).toBe('..');
    expect(urlBasename('http://h')).toBe('');
    expect(urlBasename('http://h/')).toBe('');
  });

  it('lists parent names outermost first', () => {
    expect(parentNames('a/b/c')).toEqual(['a', 'a/b']);
    expect(parentNames('a')).toEqual([]);
  });
});

const fail = (prefix: string, url: string) => {
  try {
    parseUpstreamUrl(url, 'path');
    bootFileName(prefix, url);
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return (err as InputError).field;
  }
  throw new Error(`accepted ${prefix} + ${url}`);
};

describe('rejected names and URLs (400, naming the field)', () => {
  const long = 'a'.repeat(256);
  it.each([
    ['../x', 'http://h/vmlinuz', 'prefix'],
    ['/abs', 'http://h/vmlinuz', 'prefix'],
    ['boot/../x', 'http://h/vmlinuz', 'prefix'],
    ['boot/./x', 'http://h/vmlinuz', 'prefix'],
    ['boot//x', 'http://h/vmlinuz', 'prefix'],
    ['', 'http://h/vmlinuz', 'prefix'],
    ['.hidden/x', 'http://h/vmlinuz', 'prefix'],
    ['boot/.x', 'http://h/vmlinuz', 'prefix'],
    ['-x', 'http://h/vmlinuz', 'prefix'],
    ['boot/-x/', 'http://h/vmlinuz', 'prefix'],
    ['boot\\x', 'http://h/vmlinuz', 'prefix'],
    ['boot/x y', 'http://h/vmlinuz', 'prefix'],
    ['boot/x\u0000y', 'http://h/vmlinuz', 'prefix'],
    ['boot/x\ny', 'http://h/vmlinuz', 'prefix'],
    ['boot/caf\u00e9', 'http://h/vmlinuz', 'prefix'],
    ['boot/\u0430bc', 'http://h/vmlinuz', 'prefix'], // Cyrillic look-alike
    ['boot/x:y', 'http://h/vmlinuz', 'prefix'],
    ['boot/x*', 'http://h/vmlinuz', 'prefix'],
    ['boot/x-orig/', 'http://h/vmlinuz', 'prefix'],
    ['boot/y-orig/z', 'http://h/vmlinuz', 'prefix'],
    ['pxelinux.cfg/', 'http://h/vmlinuz', 'prefix'],
    ['pxelinux.cfg/x', 'http://h/vmlinuz', 'prefix'],
    ['grub2/x', 'http://h/vmlinuz', 'prefix'],
    ['grub/', 'http://h/vmlinuz', 'prefix'],
    ['ztp.cfg/', 'http://h/vmlinuz', 'prefix'],
    ['poap.cfg/', 'http://h/vmlinuz', 'prefix'],
    ['host-config/', 'http://h/vmlinuz', 'prefix'],
    ['bootloader-universe/x', 'http://h/vmlinuz', 'prefix'],
    [`boot/${long}`, 'http://h/vmlinuz', 'prefix'],
    [`${'abcdefgh/'.repeat(120)}`, 'http://h/vmlinuz', 'prefix'],
    ['boot/t', 'http://h/dir/..', 'path'],
    ['boot/t', 'http://h/dir/.', 'path'],
    ['boot/t', 'http://h/%2e%2e', 'path'],
    ['boot/t', 'http://h/%2E%2E', 'path'],
    ['boot/t', 'http://h/dir/', 'path'],
    ['boot/t', 'http://h', 'path'],
    ['boot/t', 'http://h/.vmlinuz', 'path'],
    ['boot/t', 'http://h/-vmlinuz', 'path'],
    ['boot/t', 'http://h/a%2Fb', 'path'],
    ['boot/t', 'http://h/a%5Cb', 'path'],
    ['boot/t', 'http://h/a%00b', 'path'],
    ['boot/t', 'http://h/a%ZZ', 'path'],
    ['boot/t', 'http://h/dir\\..', 'path'],
    ['boot/t', 'http://h/vmlinuz-orig', 'path'],
    ['boot/t', `http://h/${long}`, 'path'],
    ['boot/t', 'http://h/a b', 'path'],
    ['boot/t', 'file:///etc/passwd', 'path'],
    ['boot/t', 'gopher://x/y', 'path'],
    ['boot/t', 'ftp://h/vmlinuz', 'path'],
    ['boot/t', 'javascript:alert(1)', 'path'],
    ['boot/t', 'data:text/plain,hello', 'path'],
    ['boot/t', 'tftp://h/vmlinuz', 'path'],
    ['boot/t', 'not a url', 'path'],
    ['boot/t', '/relative/vmlinuz', 'path'],
    ['boot/t', '', 'path'],
  ])('%j + %j -> 400 on %s', (prefix, url, field) => {
    expect(fail(prefix, url)).toBe(field);
  });

  it('says ftp is not supported yet, and names the scheme otherwise', () => {
    expect(() => parseUpstreamUrl('ftp://h/vmlinuz', 'path')).toThrow(/not supported yet/);
    expect(() => parseUpstreamUrl('gopher://h/x', 'path')).toThrow(/"gopher" is not supported/);
  });

  it('accepts nfs as a recorded no-op kind', () => {
    expect(parseUpstreamUrl('nfs://server/export/vmlinuz', 'path').kind).toBe('nfs');
  });

  it('limits the whole name to 1024 bytes', () => {
    expect(() => validateName(`${'abcdefg/'.repeat(127)}abcdefghi`, 'name')).toThrow(/1024 bytes/);
    expect(() => validateName(`${'abcdefg/'.repeat(127)}abcdefg`, 'name')).not.toThrow();
  });

  it('counts bytes, not characters, for the component limit', () => {
    // 128 two-byte characters are 256 bytes, though only 128 characters (and outside the set anyway).
    expect(() => validateName('\u00e9'.repeat(128), 'name')).toThrow(InputError);
    expect(() => validateName('a'.repeat(255), 'name')).not.toThrow();
  });
});

describe('names as store keys', () => {
  it('keeps every key segment of the longest legal name within a file name (255 bytes)', async () => {
    const { keys } = await import('../../../src/core/object-keys.js');
    const name = `${'a'.repeat(255)}/${'b'.repeat(255)}/${'c'.repeat(255)}/${'d'.repeat(250)}`;
    expect(() => validateName(name, 'name')).not.toThrow();
    for (const key of [keys.head(name), keys.status(name), keys.pointer(name, 1), keys.lease(name, 'f'.repeat(16), 1)])
      for (const segment of key.split('/'))
        expect(new TextEncoder().encode(segment).byteLength).toBeLessThanOrEqual(255);
  });

  it('refuses, naming the field, a name longer than a key-limited store (S3) can hold', async () => {
    const { assertStorable } = await import('../../../src/core/naming.js');
    expect(() => assertStorable('a'.repeat(1000), 'prefix', undefined)).not.toThrow();
    expect(() => assertStorable('a'.repeat(1000), 'prefix', 1024 - 'site/'.length)).toThrow(
      /prefix: .*at most 971 bytes/,
    );
    expect(() => assertStorable('a'.repeat(900), 'prefix', 1024 - 'site/'.length)).not.toThrow();
  });
});
