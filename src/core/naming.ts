import { InputError } from './errors.js';
import { hideCredentials } from './redact.js';

/**
 * Destination names for `fetch_boot_file` (DESIGN.md "Names"). The name is smart-proxy's `boot_filename`:
 * `prefix + "-" + basename`, or `prefix + basename` when the prefix ends with "/". Every component is restricted to a
 * set that tftpd-hpa, every filesystem and every object store handle the same way, so a name can never escape the
 * TFTP root or the store whatever the runtime.
 */

const COMPONENT = /^[A-Za-z0-9._+=@,-]+$/;
const MAX_COMPONENT_BYTES = 255;
const MAX_NAME_BYTES = 1024;

/** Locations the pxeconfig routes write (smart-proxy's fixed boot-config names): never a boot file. */
export const BOOT_CONFIG_ROOTS: readonly string[] = [
  'pxelinux.cfg',
  'grub',
  'grub2',
  'ztp.cfg',
  'poap.cfg',
  'host-config',
  'bootloader-universe',
];

const encoder = new TextEncoder();
const byteLength = (s: string) => encoder.encode(s).byteLength;

/** Why a single path component is not acceptable, or null. `shown` is how a message may quote it. */
export function componentProblem(component: string, shown = component): string | null {
  if (component === '') return 'has an empty path component';
  if (component === '.' || component === '..') return `has a "${component}" path component`;
  if (!COMPONENT.test(component)) return `component "${printable(shown)}" has characters outside [A-Za-z0-9._+=@,-]`;
  if (component.startsWith('.') || component.startsWith('-'))
    return `component "${shown}" must not start with "." or "-"`;
  if (byteLength(component) > MAX_COMPONENT_BYTES)
    return `component "${shown.slice(0, 20)}..." is longer than ${MAX_COMPONENT_BYTES} bytes`;
  if (component.endsWith('-orig')) return `component "${shown}" ends with "-orig", reserved for version directories`;
  return null;
}

/** Throws InputError (400) when `name` is not a legal boot-file name. */
export function validateName(name: string, field: string): void {
  if (name === '') throw new InputError(field, 'is empty');
  if (name.startsWith('/')) throw new InputError(field, `"${printable(name)}" must be relative (no leading "/")`);
  if (byteLength(name) > MAX_NAME_BYTES) throw new InputError(field, `is longer than ${MAX_NAME_BYTES} bytes`);
  const components = name.split('/');
  for (const c of components) {
    const problem = componentProblem(c);
    if (problem) throw new InputError(field, `"${printable(name)}" ${problem}`);
  }
  const first = components[0] ?? '';
  if (BOOT_CONFIG_ROOTS.includes(first))
    throw new InputError(field, `"${name}" falls inside "${first}", where boot configs live; choose another prefix`);
}

/** Bytes the longest store key adds around a name (`leases/<name>/~/<16 hex>/<10 digits>.json`), with margin. */
export const KEY_OVERHEAD_BYTES = 48;

/**
 * Throws InputError (400) for a name the store cannot hold. Key segments are the name's own components (each at most
 * 255 bytes), so the file store holds every name the rules allow; a store with a key-length limit (S3: 1024 bytes,
 * store prefix included) refuses longer names here rather than half-way through a fetch.
 */
export function assertStorable(name: string, field: string, maxKeyBytes: number | undefined): void {
  if (maxKeyBytes === undefined) return;
  const room = maxKeyBytes - KEY_OVERHEAD_BYTES;
  if (byteLength(name) > room)
    throw new InputError(
      field,
      `"${printable(name)}" is ${byteLength(name)} bytes; this store's keys hold names of at most ${room} bytes: ` +
        'use a shorter prefix',
    );
}

/**
 * The last segment of the URL's path as written (before any "?" or "#"), percent-decoded once. Taken from the raw
 * string on purpose: the WHATWG parser would resolve "..", "%2e%2e" and "\" and hide what the caller asked for.
 */
export function urlBasename(rawUrl: string): string {
  let rest = rawUrl.split(/[?#]/, 1)[0] ?? '';
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*/.exec(rest);
  if (authority) rest = rest.slice(authority[0].length);
  else rest = rest.replace(/^[A-Za-z][A-Za-z0-9+.-]*:/, '');
  const segment = rest.slice(rest.lastIndexOf('/') + 1);
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new InputError('path', `"${printable(hideCredentials(segment))}" has invalid percent-encoding`);
  }
}

/** smart-proxy's `boot_filename(prefix, path)`, validated. Blames `path` for a bad basename, `prefix` otherwise. */
export function bootFileName(prefix: string, rawUrl: string): { name: string; basename: string } {
  const basename = urlBasename(rawUrl);
  // Messages quote what the caller sent, never the `user:password@` of a media URL (regression: a URL ending in "/",
  // or written with backslashes (`http:\\u:p@host\f`, whose last "/"-segment is the whole URL), echoed it in the 400).
  if (basename === '')
    throw new InputError('path', `"${printable(hideCredentials(rawUrl))}" does not end with a file name`);
  const problem = componentProblem(basename, hideCredentials(basename));
  if (problem) throw new InputError('path', `file name ${problem.replace(/^component /, '')}`);
  if (prefix === '') throw new InputError('prefix', 'is empty');
  const name = prefix.endsWith('/') ? prefix + basename : `${prefix}-${basename}`;
  validateName(name, 'prefix');
  return { name, basename };
}

/** Directories of a name, outermost first: "a/b/c" -> ["a", "a/b"]. */
export function parentNames(name: string): string[] {
  const parts = name.split('/');
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  const shown = s.replace(/[\u0000-\u001f\u007f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
}
