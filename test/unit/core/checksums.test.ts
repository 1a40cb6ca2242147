import { describe, expect, it } from 'vitest';
import { checksumSources, parseSums, parseTreeinfo } from '../../../src/core/checksums.js';

const H64 = 'a'.repeat(64);
const H32 = 'b'.repeat(32);
const sources = (url: string, md5 = true) =>
  checksumSources(new URL(url), { md5 }).map((s) => [s.kind, s.url.href, s.entry]);

describe('checksumSources: where a medium lists a file', () => {
  it('RHEL/CentOS/Fedora: .treeinfo at the tree root, the file relative to it; then the images/ sums', () => {
    expect(sources('http://m/centos/9-stream/BaseOS/x86_64/os/images/pxeboot/vmlinuz')).toEqual([
      ['treeinfo', 'http://m/centos/9-stream/BaseOS/x86_64/os/.treeinfo', 'images/pxeboot/vmlinuz'],
      ['sha256sums', 'http://m/centos/9-stream/BaseOS/x86_64/os/images/SHA256SUMS', 'pxeboot/vmlinuz'],
      ['md5sums', 'http://m/centos/9-stream/BaseOS/x86_64/os/images/MD5SUMS', 'pxeboot/vmlinuz'],
    ]);
  });

  it('Debian: SHA256SUMS of images/ listing ./netboot/...; without MD5 the own directory comes third', () => {
    const url =
      'http://deb.debian.org/debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/linux';
    const images = 'http://deb.debian.org/debian/dists/bookworm/main/installer-amd64/current/images/';
    expect(sources(url, false)).toEqual([
      [
        'treeinfo',
        'http://deb.debian.org/debian/dists/bookworm/main/installer-amd64/current/.treeinfo',
        'images/netboot/debian-installer/amd64/linux',
      ],
      ['sha256sums', `${images}SHA256SUMS`, 'netboot/debian-installer/amd64/linux'],
      ['sha256sums', `${images}netboot/debian-installer/amd64/SHA256SUMS`, 'linux'],
    ]);
  });

  it('Ubuntu legacy-images: no .treeinfo asked for', () => {
    const base = 'http://archive.ubuntu.com/ubuntu/dists/focal-updates/main/installer-amd64/current/legacy-images/';
    expect(sources(`${base}netboot/ubuntu-installer/amd64/linux`)).toEqual([
      ['sha256sums', `${base}SHA256SUMS`, 'netboot/ubuntu-installer/amd64/linux'],
      ['md5sums', `${base}MD5SUMS`, 'netboot/ubuntu-installer/amd64/linux'],
      ['sha256sums', `${base}netboot/ubuntu-installer/amd64/SHA256SUMS`, 'linux'],
    ]);
  });

  it('any other path: the sums of its own directory; the last images segment counts; query and fragment dropped', () => {
    expect(sources('https://u:p@h/releases/22.04/vmlinuz?sig=1#x')).toEqual([
      ['sha256sums', 'https://u:p@h/releases/22.04/SHA256SUMS', 'vmlinuz'],
      ['md5sums', 'https://u:p@h/releases/22.04/MD5SUMS', 'vmlinuz'],
    ]);
    expect(sources('http://h/images/rhel/os/images/pxeboot/vmlinuz', false)[0]).toEqual([
      'treeinfo',
      'http://h/images/rhel/os/.treeinfo',
      'images/pxeboot/vmlinuz',
    ]);
    // A file directly in images/ is listed by its own directory's sums once, not twice.
    expect(sources('http://h/os/images/boot.iso', false)).toEqual([
      ['treeinfo', 'http://h/os/.treeinfo', 'images/boot.iso'],
      ['sha256sums', 'http://h/os/images/SHA256SUMS', 'boot.iso'],
    ]);
  });

  it('decodes percent-encoded segments: documents list the file name as it is', () => {
    expect(sources('http://h/os/images/pxe%20boot/vmlinuz', false)[0]?.[2]).toBe('images/pxe boot/vmlinuz');
  });
});

describe('parseTreeinfo', () => {
  it('reads [checksums] only, sha256 and md5, lowercased, skipping other algorithms and malformed values', () => {
    const text = [
      '[header]',
      'type = productmd.treeinfo',
      'version = 1.2',
      '',
      '[images-x86_64]',
      `kernel = images/pxeboot/vmlinuz`,
      '[checksums]',
      '# comment',
      `images/pxeboot/vmlinuz = sha256:${H64.toUpperCase()}`,
      `images/pxeboot/initrd.img = sha256:${'c'.repeat(64)}`,
      `images/install.img = sha1:${'d'.repeat(40)}`,
      `images/efiboot.img = md5:${H32}`,
      `images/short.img = sha256:abc`,
      '[stage2]',
      `mainimage = sha256:${H64}`,
    ].join('\r\n');
    expect(Object.fromEntries(parseTreeinfo(text))).toEqual({
      'images/pxeboot/vmlinuz': `sha256:${H64}`,
      'images/pxeboot/initrd.img': `sha256:${'c'.repeat(64)}`,
      'images/efiboot.img': `md5:${H32}`,
    });
  });

  it('finds nothing in what is not a treeinfo (an HTML error page served with 200)', () => {
    expect(parseTreeinfo('<html><body>[checksums]</body></html>').size).toBe(0);
  });
});

describe('parseSums', () => {
  it('reads coreutils text and binary lines and tagged lines, "./" stripped, other lengths and tags skipped', () => {
    const text = [
      `${H64}  ./netboot/debian-installer/amd64/linux`,
      `${'c'.repeat(64)} *netboot/netboot.tar.gz`,
      `SHA256 (mini.iso) = ${'d'.repeat(64)}`,
      `MD5 (other.iso) = ${H32}`,
      `${H32}  ./too-short-for-sha256`,
      'garbage line',
    ].join('\n');
    expect(Object.fromEntries(parseSums(text, 'sha256'))).toEqual({
      'netboot/debian-installer/amd64/linux': `sha256:${H64}`,
      'netboot/netboot.tar.gz': `sha256:${'c'.repeat(64)}`,
      'mini.iso': `sha256:${'d'.repeat(64)}`,
    });
    expect(Object.fromEntries(parseSums(text, 'md5'))).toEqual({
      'other.iso': `md5:${H32}`,
      'too-short-for-sha256': `md5:${H32}`,
    });
  });
});
