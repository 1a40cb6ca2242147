/**
 * Installation media as mirrors lay them out, served by the test upstream (helpers/upstream.ts): a RHEL tree with its
 * `.treeinfo`, a Debian installer with `images/SHA256SUMS`, and an old installer with only `images/MD5SUMS`.
 */
import { createHash } from 'node:crypto';
import type { Upstream } from './upstream.js';

export const RHEL = '/rhel/9/BaseOS/x86_64/os';
export const RHEL_KERNEL = `${RHEL}/images/pxeboot/vmlinuz`;
export const RHEL_INITRD = `${RHEL}/images/pxeboot/initrd.img`;
export const TREEINFO = `${RHEL}/.treeinfo`;
export const DEBIAN_IMAGES = '/debian/dists/bookworm/main/installer-amd64/current/images';
export const DEBIAN_KERNEL = `${DEBIAN_IMAGES}/netboot/debian-installer/amd64/linux`;
export const OLD_IMAGES = '/debian/dists/etch/main/installer-i386/current/images';
export const OLD_KERNEL = `${OLD_IMAGES}/netboot/debian-installer/i386/linux`;

const digest = (algorithm: 'sha256' | 'md5', bytes: Uint8Array | string) =>
  createHash(algorithm).update(bytes).digest('hex');

/** A productmd `.treeinfo` whose `[checksums]` list `files` (tree-relative path -> bytes). */
export function treeinfo(files: Readonly<Record<string, Uint8Array | string>>): string {
  const lines = Object.entries(files).map(([path, bytes]) => `${path} = sha256:${digest('sha256', bytes)}`);
  return [
    '[header]',
    'type = productmd.treeinfo',
    'version = 1.2',
    '',
    '[images-x86_64]',
    'kernel = images/pxeboot/vmlinuz',
    'initrd = images/pxeboot/initrd.img',
    '',
    '[checksums]',
    ...lines,
    '',
  ].join('\n');
}

/** `SHA256SUMS` or `MD5SUMS` as Debian writes them: `<hex>  ./<path>`. */
export function sums(algorithm: 'sha256' | 'md5', files: Readonly<Record<string, Uint8Array | string>>): string {
  return Object.entries(files)
    .map(([path, bytes]) => `${digest(algorithm, bytes)}  ./${path}\n`)
    .join('');
}

/** The RHEL tree: kernel and initrd, and a `.treeinfo` listing both (or `listed` instead). */
export function serveRhel(
  up: Upstream,
  kernel: Uint8Array,
  initrd: Uint8Array,
  listed: Readonly<Record<string, Uint8Array>> = {
    'images/pxeboot/vmlinuz': kernel,
    'images/pxeboot/initrd.img': initrd,
  },
): void {
  up.set(RHEL_KERNEL, kernel);
  up.set(RHEL_INITRD, initrd);
  up.set(TREEINFO, treeinfo(listed));
}

/**
 * Whether a request (a path, a URL, a logged request line or an FTP command) is for a checksum document: every
 * download that publishes also looks for the medium's (core/checksum-check.ts), which tests about the file itself
 * leave out of their counts.
 */
export const isChecksumDocument = (request: string): boolean =>
  /(^|[/ ])(\.treeinfo|SHA256SUMS|MD5SUMS)(\s|$)/.test(request);

/** `requests` without the checksum documents. */
export const withoutChecksumDocuments = (requests: readonly string[]): string[] =>
  requests.filter((r) => !isChecksumDocument(r));
