/**
 * Security issue, part 4: property-based tests (fast-check) of the name and URL rules, over arbitrary strings biased
 * toward what attackers send (dot segments in every encoding, separators, percent signs, control characters,
 * look-alikes, reserved words). Each property re-states the rule independently of the code under test (DESIGN.md
 * "Names") and checks that the paths and store keys derived from an accepted name can never leave their root.
 */
import fc from 'fast-check';

// A fixed seed keeps CI reproducible (a red run can be replayed exactly); set FC_SEED to explore other inputs.
fc.configureGlobal({ seed: Number(process.env.FC_SEED ?? 20_261_126) });
import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { entryPaths } from '../../src/agent/layout.js';
import { InputError } from '../../src/core/errors.js';
import { assertStorable, bootFileName } from '../../src/core/naming.js';
import { keys } from '../../src/core/object-keys.js';
import { redactUrl } from '../../src/core/redact.js';
import { defaultUrlPolicy, nodeUrlPolicy, parseUpstreamUrl } from '../../src/core/url-policy.js';
import { keyProblem } from '../../src/storage/object-store.js';

const RUNS = 3000;
const ROOT = '/srv/tftp';
const CONFIG_ROOTS = ['pxelinux.cfg', 'grub', 'grub2', 'ztp.cfg', 'poap.cfg', 'host-config', 'bootloader-universe'];
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** Pieces attackers combine, and pieces of legitimate names (so that a fair share of inputs is accepted). */
const HOSTILE = [
  ...['..', '.', '/', '//', '\\', '%', '%2e', '%2E', '%2f', '%2F', '%5c', '%00', '%252e', '%c0%ae', '%zz', '%e2%80%ae'],
  ...[':', '?', '#', ' ', '\t', '\n', '\r', '\u0000', '\u007f', '\u202e', '\u200b', '\ufeff', '\uff0e', '\uff0f'],
  ...['\u2215', '\u2024', '\u0430', '\u00e9', '~', '*', ';', '"', "'", '<', '$', '-orig', 'pxelinux.cfg', 'grub2'],
  ...['grub', '.pxecache-tmp-', '.tmp-', 'a'.repeat(120), 'b'.repeat(255)],
];
const PLAIN = ['boot', 'centos-9', 'x', 'A', '0', '_', '+', '=', '@', ',', '-', '.', 'vmlinuz', 'initrd.img', 'orig'];

const piece = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...PLAIN) }, fc.constantFrom(...HOSTILE));
/** Strings made of pieces, plain or hostile; and arbitrary UTF-16 (lone surrogates included). */
const hostileString = fc.oneof(
  { weight: 4, arbitrary: fc.array(piece, { maxLength: 16 }).map((parts) => parts.join('')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom('.', '/', '\\', '%', '2', 'e', 'f', 'a', '-'), maxLength: 24 }) }, // prettier-ignore
);
/** A prefix: Foreman-shaped, long and legal (near the byte limits), or anything. */
const prefixArb = fc.oneof(
  fc.tuple(fc.constantFrom('boot/', 'boot/x-', ''), hostileString).map(([a, b]) => a + b),
  fc.array(fc.constantFrom('boot', 'a'.repeat(100), 'b'.repeat(250), '+', '=', '@', '/', '-'), { maxLength: 14 }).map((p) => p.join('')), // prettier-ignore
  hostileString,
);
/** An upstream URL: a plausible start and a hostile tail, or anything. */
const urlArb = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom('http://h/', 'http://mirror/os/9/images/pxeboot/', 'https://u:p@h:8080/d/', 'ftp://h/', 'nfs://h/export/', 'http:\\\\h\\', 'http://h', ''), hostileString).map(([a, b]) => a + b) }, // prettier-ignore
  { weight: 1, arbitrary: hostileString },
);

/** DESIGN.md "Names", restated. A basename is one component under the same rule (`grub` is a fine file name). */
function nameProblems(name: string, kind: 'name' | 'basename' = 'name'): string[] {
  const out: string[] = [];
  if (name.startsWith('/')) out.push('absolute');
  if (bytes(name) > 1024) out.push('longer than 1024 bytes');
  const parts = name.split('/');
  for (const c of parts) {
    if (!/^[A-Za-z0-9._+=@,-]+$/.test(c)) out.push(`component ${JSON.stringify(c)} outside the set`);
    if (c === '.' || c === '..' || c.startsWith('.') || c.startsWith('-')) out.push(`component ${c} starts badly`);
    if (bytes(c) > 255) out.push('component longer than 255 bytes');
    if (c.endsWith('-orig')) out.push(`component ${c} ends with -orig`);
  }
  if (kind === 'name' && CONFIG_ROOTS.includes(parts[0] ?? '')) out.push('inside a boot-config location');
  if (posix.normalize(name) !== name) out.push('not normalised');
  const joined = posix.join(ROOT, name);
  if (!joined.startsWith(`${ROOT}/`) || posix.relative(ROOT, joined) !== name) out.push('leaves the root');
  return out;
}

function expectInputError(err: unknown, fields: readonly string[]): void {
  expect(err).toBeInstanceOf(InputError);
  const { field, message } = err as InputError;
  expect(fields).toContain(field);
  expect(message.startsWith(`${field}: `)).toBe(true);
}

describe('bootFileName(prefix, url)', () => {
  it('throws InputError naming prefix or path, or returns a name every rule allows', () => {
    let accepted = 0;
    fc.assert(
      fc.property(prefixArb, urlArb, (prefix, url) => {
        let result: { name: string; basename: string };
        try {
          result = bootFileName(prefix, url);
        } catch (err) {
          expectInputError(err, ['prefix', 'path']);
          return;
        }
        accepted++;
        expect(nameProblems(result.name), result.name).toEqual([]);
        expect(nameProblems(result.basename, 'basename'), result.basename).toEqual([]);
        expect(result.basename).not.toContain('/');
        expect(result.name.endsWith(result.basename)).toBe(true);
      }),
      { numRuns: RUNS },
    );
    // The property must have seen accepted names too, not only refusals.
    expect(accepted).toBeGreaterThan(RUNS / 20);
  });

  it('names the store accepts map to keys inside the store, each segment within a file name', () => {
    fc.assert(
      fc.property(prefixArb, urlArb, fc.integer({ min: 1, max: 2 ** 40 }), (prefix, url, generation) => {
        let name: string;
        try {
          name = bootFileName(prefix, url).name;
          assertStorable(name, 'prefix', undefined);
        } catch (err) {
          expectInputError(err, ['prefix', 'path']);
          return;
        }
        // [key, number of segments]: the name's own components plus a fixed count, so it cannot climb out of its prefix.
        const n = name.split('/').length;
        const derived: [string, number][] = [
          [keys.head(name), n + 2],
          [keys.status(name), n + 3],
          [keys.pointer(name, generation), n + 4],
          [keys.lease(name, '0123456789abcdef', 1_700_000_000), n + 4],
        ];
        for (const [key, segments] of derived) {
          expect(keyProblem(key), key).toBeNull();
          expect(key.split('/')).toHaveLength(segments);
          for (const segment of key.split('/')) expect(bytes(segment)).toBeLessThanOrEqual(255);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('credentials in media URLs', () => {
  // Characters a password may hold in a URL as written, "@" and ":" included; the marker makes it findable.
  const password = fc
    .string({ unit: fc.constantFrom(...'abcXYZ019@:%!$&()*+,;=._~-'), maxLength: 12 })
    .map((s) => `Hunter2x${s}`);
  const url = fc
    .tuple(
      fc.constantFrom('http', 'https', 'ftp', 'HTTP'),
      fc.constantFrom('://', ':\\\\', ':/', ':', ': //'),
      fc.constantFrom('', 'user'),
      password,
      fc.constantFrom('mirror', '127.0.0.1:8080', '[::1]', '[bad', 'h:99999'),
      fc.oneof(fc.constantFrom('/', '/d/', '\\d\\', '/d/vmlinuz', '/..', '/%zz', '/d/%2e%2e', ''), hostileString),
    )
    .map(([scheme, sep, user, pw, host, rest]) => ({ raw: `${scheme}${sep}${user}:${pw}@${host}${rest}`, pw }));

  it('never appear in a refusal of bootFileName, nor in redactUrl', () => {
    fc.assert(
      fc.property(url, prefixArb, ({ raw }, prefix) => {
        expect(redactUrl(raw)).not.toContain('Hunter2x');
        try {
          bootFileName(prefix, raw);
        } catch (err) {
          expectInputError(err, ['prefix', 'path']);
          expect((err as Error).message).not.toContain('Hunter2x');
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('parseUpstreamUrl(raw)', () => {
  const schemeArb = fc.oneof(
    fc.constantFrom('http', 'https', 'ftp', 'nfs', 'HTTP', 'hTtPs', 'file', 'gopher', 'data', 'javascript', 'tftp'),
    fc.stringMatching(/^[A-Za-z][A-Za-z0-9+.-]{0,8}$/),
  );
  const rawUrl = fc.oneof(
    { weight: 3, arbitrary: fc.tuple(schemeArb, fc.constantFrom(':', '://', ':/', ':\\\\', '://u:p@'), hostileString).map((p) => p.join('')) }, // prettier-ignore
    { weight: 1, arbitrary: hostileString },
  );

  it.each([
    ['default (Workers, Lambda)', defaultUrlPolicy, ['http:', 'https:', 'nfs:']],
    ['node', nodeUrlPolicy, ['http:', 'https:', 'ftp:', 'nfs:']],
  ] as const)('never accepts a scheme outside http, https, ftp and nfs: %s policy', (_, policy, allowed) => {
    let accepted = 0;
    fc.assert(
      fc.property(rawUrl, (raw) => {
        let parsed: ReturnType<typeof parseUpstreamUrl>;
        try {
          parsed = parseUpstreamUrl(raw, 'path', policy);
        } catch (err) {
          expectInputError(err, ['path']);
          return;
        }
        accepted++;
        expect(allowed as readonly string[]).toContain(parsed.url.protocol);
        const kind = { 'http:': 'http', 'https:': 'http', 'ftp:': 'ftp', 'nfs:': 'nfs' }[parsed.url.protocol];
        expect(parsed.kind).toBe(kind);
        if (parsed.kind !== 'nfs') expect(parsed.url.hostname).not.toBe('');
      }),
      { numRuns: RUNS },
    );
    expect(accepted).toBeGreaterThan(RUNS / 20);
  });
});

describe('entryPaths(root, name, version, basename) of the agent', () => {
  const version = fc.stringMatching(/^[0-9a-f]{16}$/);
  const inside = (path: string) => path.startsWith(`${ROOT}/`) && !posix.relative(ROOT, path).startsWith('..');

  it('keeps every path of an accepted name inside the root, the link target included', () => {
    let accepted = 0;
    fc.assert(
      fc.property(prefixArb, urlArb, version, (prefix, url, v) => {
        let result: { name: string; basename: string };
        try {
          result = bootFileName(prefix, url);
        } catch {
          return;
        }
        accepted++;
        const p = entryPaths(ROOT, result.name, v, result.basename);
        for (const path of [p.dir, p.link, p.versionsDir, p.versionDir, p.file]) {
          expect(posix.normalize(path)).toBe(path);
          expect(path === ROOT || inside(path), path).toBe(true);
        }
        expect(inside(p.link) && inside(p.file)).toBe(true);
        expect(p.linkTarget.startsWith('/') || p.linkTarget.split('/').includes('..')).toBe(false);
        // What the symlink resolves to, relative to its own directory, is the verified file: inside the root.
        expect(posix.join(posix.dirname(p.link), p.linkTarget)).toBe(p.file);
      }),
      { numRuns: RUNS },
    );
    expect(accepted).toBeGreaterThan(RUNS / 20);
  });

  it('refuses (InputError) or keeps inside the root whatever name, basename and version it is handed', () => {
    fc.assert(
      fc.property(hostileString, hostileString, fc.oneof(version, hostileString), (name, basename, v) => {
        let p: ReturnType<typeof entryPaths>;
        try {
          p = entryPaths(ROOT, name, v, basename);
        } catch (err) {
          expect(err).toBeInstanceOf(InputError);
          return;
        }
        for (const path of [p.link, p.versionsDir, p.versionDir, p.file]) expect(inside(path), path).toBe(true);
        expect(posix.join(posix.dirname(p.link), p.linkTarget)).toBe(p.file);
      }),
      { numRuns: RUNS },
    );
  });
});
