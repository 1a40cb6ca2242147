/**
 * The upstream policy at request time (security issue part 3): a caller picks the upstream URL, so every spelling of
 * a link-local or metadata address must be refused before anything connects, with a 400 naming the field; loopback
 * and private ranges stay allowed (installation media live there); `--upstream-allow` narrows, `--upstream-deny`
 * adds. Connect-time checks (DNS rebinding) are in test/integration/upstream-policy.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/core/config.js';
import { ConfigError, InputError, UpstreamError } from '../../../src/core/errors.js';
import { createFetcher } from '../../../src/core/fetcher.js';
import { hostRefusal, resolvedRefusal, withHostLists } from '../../../src/core/host-rules.js';
import type { UpstreamClient, UpstreamRequest } from '../../../src/core/ports.js';
import { upstreamGet } from '../../../src/core/upstream-get.js';
import { defaultUrlPolicy, nodeUrlPolicy, parseUpstreamUrl, type UrlPolicy } from '../../../src/core/url-policy.js';
import { statusOf } from '../../../src/http/errors.js';
import { createMemoryStore } from '../../../src/storage/memory-store.js';
import { testFetcherDeps } from '../../helpers/fetcher-deps.js';

/** Every notation the WHATWG URL parser accepts for the metadata address, and its IPv6 forms. */
const METADATA_SPELLINGS = [
  'http://169.254.169.254/latest/meta-data/',
  'http://2852039166/vmlinuz',
  'http://0xa9fea9fe/vmlinuz',
  'http://0xa9.0xfe.0xa9.0xfe/vmlinuz',
  'http://0251.0376.0251.0376/vmlinuz',
  'http://169.254.43518/vmlinuz',
  'http://169.16689662/vmlinuz',
  'http://169.254.169.254./vmlinuz',
  'http://%31%36%39.254.169.254/vmlinuz',
  'http://１６９.２５４.１６９.２５４/vmlinuz',
  'http://169。254。169。254/vmlinuz',
  'http://user:pw@169.254.169.254:80/vmlinuz',
  'https://169.254.169.254/vmlinuz',
  'ftp://169.254.169.254/vmlinuz',
  'http://[::ffff:169.254.169.254]/vmlinuz',
  'http://[::ffff:a9fe:a9fe]/vmlinuz',
  'http://[0:0:0:0:0:ffff:a9fe:a9fe]/vmlinuz',
  'http://[::ffff:0:a9fe:a9fe]/vmlinuz',
  'http://[64:ff9b::169.254.169.254]/vmlinuz',
  'http://[::169.254.169.254]/vmlinuz',
];

const OTHER_DENIED: [string, RegExp][] = [
  ['http://169.254.0.1/vmlinuz', /169\.254\.0\.0\/16/],
  ['http://[fe80::1]/vmlinuz', /fe80::\/10/],
  ['http://[FE80::a:b:c:d]/vmlinuz', /fe80::\/10/],
  ['http://[febf::1]/vmlinuz', /fe80::\/10/],
  ['http://[fd00:ec2::254]/vmlinuz', /fd00:ec2::254\/128/],
  ['http://[fd00:ec2:0::254]/vmlinuz', /fd00:ec2::254\/128/],
  ['http://0.0.0.0/vmlinuz', /0\.0\.0\.0\/8/],
  ['http://0/vmlinuz', /0\.0\.0\.0\/8/],
  ['http://0.1.2.3/vmlinuz', /0\.0\.0\.0\/8/],
  ['http://[::]/vmlinuz', /::\/128/],
  ['http://[::ffff:0.0.0.0]/vmlinuz', /0\.0\.0\.0\/8/],
];

function refusal(raw: string, policy: UrlPolicy = nodeUrlPolicy, field = 'path'): InputError {
  try {
    parseUpstreamUrl(raw, field, policy);
  } catch (err) {
    expect(err, raw).toBeInstanceOf(InputError);
    return err as InputError;
  }
  throw new Error(`${raw} was accepted`);
}

const accepted = (raw: string, policy: UrlPolicy = nodeUrlPolicy) => parseUpstreamUrl(raw, 'path', policy).kind;
const policyWith = (lists: { allow?: string; deny?: string }) => withHostLists(nodeUrlPolicy, lists);

describe('upstream policy: refused literals', () => {
  it.each(METADATA_SPELLINGS)('refuses %s with a 400 on `path` naming the address and the rule', (raw) => {
    const err = refusal(raw);
    expect(err.field).toBe('path');
    expect(statusOf(err)).toBe(400);
    expect(err.message).toMatch(/^path: address /);
    expect(err.message).toContain('169.254.169.254');
    expect(err.message).toContain('refused by the default rule 169.254.0.0/16');
  });

  it.each(OTHER_DENIED)('refuses %s (link-local, AWS IPv6 metadata, "this host")', (raw, rule) => {
    const err = refusal(raw);
    expect(statusOf(err)).toBe(400);
    expect(err.message).toMatch(rule);
  });

  it('says which IPv4 address an IPv6 address stands for', () => {
    expect(refusal('http://[::ffff:a9fe:a9fe]/x').message).toContain(
      'address ::ffff:a9fe:a9fe (IPv4-mapped 169.254.169.254) is refused',
    );
    expect(refusal('http://[64:ff9b::a9fe:a9fe]/x').message).toContain('(NAT64 169.254.169.254)');
  });

  it('applies on every runtime, Workers and Lambda included (the literal check needs no sockets)', () => {
    expect(refusal('http://2852039166/x', defaultUrlPolicy).message).toContain('169.254.0.0/16');
  });

  it('names the field it was given (the native API says `url`, a redirect `redirect`)', () => {
    expect(refusal('http://169.254.169.254/', nodeUrlPolicy, 'url').field).toBe('url');
  });

  it('leaves nfs:// alone: smart-proxy records it as a no-op, nothing is fetched', () => {
    expect(accepted('nfs://169.254.169.254/export/vmlinuz')).toBe('nfs');
  });

  it('refuses a zone in an IPv6 host as an invalid URL (the URL standard has no zones), still a 400 on path', () => {
    const err = refusal('http://[fe80::1%25eth0]/vmlinuz');
    expect(err.field).toBe('path');
    expect(statusOf(err)).toBe(400);
  });
});

describe('upstream policy: allowed by default', () => {
  it.each([
    'http://127.0.0.1/vmlinuz',
    'http://127.1/vmlinuz',
    'http://localhost:8080/vmlinuz',
    'http://[::1]/vmlinuz',
    'http://10.0.0.5/vmlinuz',
    'http://172.16.1.1/vmlinuz',
    'http://192.168.1.10/vmlinuz',
    'http://[fd00::5]/vmlinuz',
    'http://[::ffff:10.0.0.5]/vmlinuz',
    'http://169.255.0.1/vmlinuz',
    'http://168.254.169.254/vmlinuz',
    'https://mirror.centos.org/centos/9/vmlinuz',
    'ftp://ftp.example.org/pub/vmlinuz',
    'http://169.254.169.254.nip.io/vmlinuz',
  ])('accepts %s (loopback, private, public, names: media live there)', (raw) => {
    expect(accepted(raw)).not.toBe('nfs');
  });
});

describe('upstream policy: --upstream-allow narrows, --upstream-deny adds', () => {
  const allow = policyWith({ allow: '10.0.0.0/8, mirror.example.com,*.media.example.org' });

  it('accepts only listed addresses and names', () => {
    expect(accepted('http://10.1.2.3/vmlinuz', allow)).toBe('http');
    expect(accepted('http://[::ffff:10.1.2.3]/vmlinuz', allow)).toBe('http');
    expect(accepted('http://mirror.example.com/vmlinuz', allow)).toBe('http');
    expect(accepted('http://MIRROR.example.com./vmlinuz', allow)).toBe('http');
    expect(accepted('http://a.b.media.example.org/vmlinuz', allow)).toBe('http');
    const err = refusal('http://192.168.1.10/vmlinuz', allow);
    expect(statusOf(err)).toBe(400);
    expect(err.message).toBe(
      'path: address 192.168.1.10 is refused by --upstream-allow (not in 10.0.0.0/8, mirror.example.com, *.media.example.org)',
    );
    expect(refusal('http://127.0.0.1/vmlinuz', allow).message).toContain('--upstream-allow');
  });

  it('still refuses denied addresses inside an allowed range', () => {
    const wide = policyWith({ allow: '0.0.0.0/0,::/0' });
    expect(refusal('http://169.254.169.254/', wide).message).toContain('the default rule 169.254.0.0/16');
    expect(refusal('http://[fe80::1]/', wide).message).toContain('fe80::/10');
    expect(accepted('http://203.0.113.7/', wide)).toBe('http');
  });

  it('with names only, refuses other names at request time', () => {
    const names = policyWith({ allow: 'mirror.example.com,*.example.org' });
    expect(refusal('http://evil.example.net/vmlinuz', names).message).toBe(
      'path: host evil.example.net is refused by --upstream-allow (not in mirror.example.com, *.example.org)',
    );
    // The wildcard is for names below the domain, not the domain itself.
    expect(refusal('http://example.org/vmlinuz', names).message).toContain('--upstream-allow');
    expect(refusal('http://notexample.org/vmlinuz', names).message).toContain('--upstream-allow');
  });

  it('with CIDRs, lets other names through to the connect-time check of what they resolve to', () => {
    expect(accepted('http://media.internal/vmlinuz', allow)).toBe('http');
    expect(resolvedRefusal(allow, 'media.internal', '10.9.9.9')).toBeNull();
    expect(resolvedRefusal(allow, 'media.internal', '192.168.1.1')).toBe(
      'resolved media.internal to 192.168.1.1, which is refused by --upstream-allow (not in 10.0.0.0/8, mirror.example.com, *.media.example.org)',
    );
    // A name allowed by name may resolve anywhere the deny rules allow.
    expect(resolvedRefusal(allow, 'mirror.example.com', '192.168.1.1')).toBeNull();
    expect(resolvedRefusal(allow, 'mirror.example.com', '169.254.169.254')).toMatch(/default rule 169\.254\.0\.0\/16/);
  });

  it('adds denied ranges and names to the defaults', () => {
    const deny = policyWith({ deny: '10.9.0.0/16, metadata.google.internal, *.corp.example, 100.100.100.200' });
    expect(refusal('http://10.9.1.1/x', deny).message).toBe(
      'path: address 10.9.1.1 is refused by --upstream-deny 10.9.0.0/16',
    );
    expect(refusal('http://[::ffff:10.9.1.1]/x', deny).message).toContain('--upstream-deny 10.9.0.0/16');
    expect(refusal('http://100.100.100.200/x', deny).message).toContain('--upstream-deny 100.100.100.200/32');
    expect(refusal('http://metadata.google.internal/x', deny).message).toBe(
      'path: host metadata.google.internal is refused by --upstream-deny metadata.google.internal',
    );
    expect(refusal('http://git.corp.example/x', deny).message).toContain('--upstream-deny *.corp.example');
    expect(refusal('http://169.254.169.254/x', deny).message).toContain('default rule');
    expect(accepted('http://10.8.1.1/x', deny)).toBe('http');
    expect(resolvedRefusal(deny, 'media.internal', '10.9.0.1')).toContain('--upstream-deny 10.9.0.0/16');
  });

  it('reports every bad entry at start, naming the option', () => {
    let caught: unknown;
    try {
      withHostLists(nodeUrlPolicy, { allow: '10.0.0.0/33,ok.example,bad host@x', deny: 'fe80::1%eth0,0x7f.1' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const issues = (caught as ConfigError).issues;
    expect(issues).toHaveLength(4);
    expect(issues[0]).toMatch(/^--upstream-allow: "10\.0\.0\.0\/33" is not a valid address or CIDR/);
    expect(issues[1]).toMatch(/^--upstream-allow: "host@x"/);
    expect(issues[2]).toMatch(/^--upstream-deny: "fe80::1%eth0"/);
    expect(issues[3]).toMatch(/^--upstream-deny: "0x7f\.1" .*dotted decimal/);
  });

  it('is part of the serve and fetch configuration, validated with the flag name', () => {
    for (const command of ['serve', 'fetch'] as const) {
      const base = command === 'fetch' ? { prefix: 'boot/t', url: 'http://10.0.0.1/x' } : {};
      const ok = parseConfig(command, { ...base, 'upstream-allow': '10.0.0.0/8', 'upstream-deny': '' });
      expect(ok['upstream-allow']).toBe('10.0.0.0/8');
      expect(parseConfig(command, base)['upstream-deny']).toBe('');
      expect(() => parseConfig(command, { ...base, 'upstream-allow': '10.0.0.0/99' })).toThrow(
        /--upstream-allow: "10\.0\.0\.0\/99" is not a valid address or CIDR/,
      );
    }
  });
});

describe('upstream policy: redirects and the fetcher', () => {
  function recordingUpstream(location: string) {
    const seen: string[] = [];
    const client: UpstreamClient = {
      async request(req: UpstreamRequest) {
        seen.push(req.url.href);
        return {
          status: 302,
          header: (name) => (name === 'location' ? location : undefined),
          body: (async function* () {})(),
          async discard() {},
        };
      },
    };
    return { client, seen };
  }

  it.each(['http://169.254.169.254/latest/meta-data/', 'http://0xa9fea9fe/', 'http://[::ffff:a9fe:a9fe]/'])(
    'refuses a redirect to %s without following it',
    async (location) => {
      const { client, seen } = recordingUpstream(location);
      const get = upstreamGet(client, new URL('http://10.0.0.1/vmlinuz'), null, {
        maxRedirects: 5,
        policy: nodeUrlPolicy,
        userAgent: 'test',
      });
      await expect(get).rejects.toBeInstanceOf(UpstreamError);
      await expect(get).rejects.toMatchObject({
        code: 'redirect-refused',
        message: expect.stringContaining('refused by the default rule 169.254.0.0/16') as unknown,
      });
      expect(seen).toEqual(['http://10.0.0.1/vmlinuz']);
    },
  );

  it('refuses a redirect out of the allow-list', async () => {
    const { client } = recordingUpstream('http://192.168.7.7/vmlinuz');
    const get = upstreamGet(client, new URL('http://10.0.0.1/vmlinuz'), null, {
      maxRedirects: 5,
      policy: policyWith({ allow: '10.0.0.0/8' }),
      userAgent: 'test',
    });
    await expect(get).rejects.toMatchObject({
      code: 'redirect-refused',
      message: expect.stringContaining('--upstream-allow') as unknown,
    });
  });

  it('a refused submission changes nothing and never reaches upstream', async () => {
    const store = createMemoryStore();
    const { client, seen } = recordingUpstream('http://10.0.0.1/x');
    const fetcher = createFetcher(testFetcherDeps(store, client));
    for (const path of METADATA_SPELLINGS) {
      await expect(fetcher.submit({ prefix: 'boot/t', path })).rejects.toMatchObject({ field: 'path' });
    }
    await expect(fetcher.submit({ name: 'boot/t-vmlinuz', url: 'http://[fe80::1]/x' })).rejects.toMatchObject({
      field: 'url',
    });
    expect(seen).toEqual([]);
    expect((await store.list('', {})).keys).toEqual([]);
  });

  it('hostRefusal reads URL hostnames as the parser gives them (brackets, trailing dot)', () => {
    expect(hostRefusal(nodeUrlPolicy, '[fe80::1]')).toContain('fe80::/10');
    expect(hostRefusal(nodeUrlPolicy, 'mirror.example.')).toBeNull();
  });
});
