import { describe, expect, it } from 'vitest';
import {
  cidrContains,
  embeddedIpv4,
  formatCidr,
  formatIp,
  parseCidr,
  parseIp,
  parseIpv4,
  parseIpv6,
  type IpAddress,
} from '../../../src/core/ip.js';

const ip = (text: string): IpAddress => {
  const addr = parseIp(text);
  if (!addr) throw new Error(`${text} did not parse`);
  return addr;
};
const bytes = (text: string) => Array.from(ip(text).bytes);

describe('parseIpv4', () => {
  it('reads dotted decimal into four bytes', () => {
    expect(Array.from(parseIpv4('169.254.169.254')?.bytes ?? [])).toEqual([169, 254, 169, 254]);
    expect(Array.from(parseIpv4('0.0.0.0')?.bytes ?? [])).toEqual([0, 0, 0, 0]);
    expect(Array.from(parseIpv4('255.255.255.255')?.bytes ?? [])).toEqual([255, 255, 255, 255]);
  });

  it('refuses every loose form: those are the URL parser’s to normalise, never guessed here', () => {
    for (const bad of [
      '',
      '1.2.3',
      '1.2.3.4.5',
      '256.1.1.1',
      '01.2.3.4', // octal to a URL parser
      '0xa9.254.169.254',
      '2852039166',
      '1.2.3.4.',
      ' 1.2.3.4',
      '1.2.3.-4',
      '1..2.3',
      '1.2.3.1000',
    ])
      expect(parseIpv4(bad), bad).toBeNull();
  });
});

describe('parseIpv6', () => {
  it('reads full, compressed and IPv4-tailed forms', () => {
    expect(bytes('::')).toEqual(new Array(16).fill(0));
    expect(bytes('::1')).toEqual([...new Array(15).fill(0), 1]);
    expect(bytes('1::')).toEqual([0, 1, ...new Array(14).fill(0)]);
    expect(bytes('1:2:3:4:5:6:7:8')).toEqual([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    expect(bytes('1:2:3:4:5:6:7::')).toEqual([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0]);
    expect(bytes('::ffff:169.254.169.254')).toEqual([...new Array(10).fill(0), 255, 255, 169, 254, 169, 254]);
    expect(bytes('1:2:3:4:5:6:1.2.3.4')).toEqual([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4]);
    expect(bytes('FE80::ABCD')).toEqual(bytes('fe80::abcd'));
  });

  it('refuses malformed text', () => {
    for (const bad of [
      '',
      ':',
      ':::',
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7:8::',
      '::1:2:3:4:5:6:7:8',
      '12345::',
      'g::',
      '1:2:3:4:5:6:7',
      ':1::',
      '1::2:',
      '::1.2.3',
      '1.2.3.4::',
      '::1.2.3.4:5',
      '1:2:3:4:5:6:7:1.2.3.4',
      '::ffff:01.2.3.4',
    ])
      expect(parseIpv6(bad), bad).toBeNull();
  });
});

describe('parseIp', () => {
  it('takes a URL hostname’s brackets and a resolver’s zone, and picks the family', () => {
    expect(ip('[::1]').family).toBe(6);
    expect(bytes('fe80::1%eth0')).toEqual(bytes('fe80::1'));
    expect(bytes('[fe80::1%25eth0]')).toEqual(bytes('fe80::1'));
    expect(ip('10.0.0.1').family).toBe(4);
    expect(parseIp('[10.0.0.1]')).toBeNull();
    expect(parseIp('10.0.0.1%eth0')).toBeNull();
    expect(parseIp('mirror.example')).toBeNull();
  });
});

describe('formatIp', () => {
  it('serialises IPv6 exactly as the WHATWG URL parser does (RFC 5952)', () => {
    for (const text of [
      '::',
      '::1',
      '1::',
      '1:0:0:2:0:0:0:3',
      '1:0:0:2:0:0:3:4',
      '1:0:2:3:4:5:6:7',
      '2001:db8:0:0:1:0:0:1',
      '::ffff:169.254.169.254',
      '64:ff9b::10.0.0.1',
      'FD00:EC2::254',
      'fe80:0000:0000:0000:0000:0000:0000:0001',
    ]) {
      expect(`[${formatIp(ip(text))}]`, text).toBe(new URL(`http://[${text}]/`).hostname);
    }
    expect(formatIp(ip('169.254.169.254'))).toBe('169.254.169.254');
  });
});

describe('CIDR', () => {
  it('parses ranges and single addresses, clearing host bits', () => {
    expect(formatCidr(parseCidr('169.254.0.0/16')!)).toBe('169.254.0.0/16');
    expect(formatCidr(parseCidr('10.1.2.3/8')!)).toBe('10.0.0.0/8');
    expect(formatCidr(parseCidr('10.1.2.3')!)).toBe('10.1.2.3/32');
    expect(formatCidr(parseCidr('fe80::1/10')!)).toBe('fe80::/10');
    expect(formatCidr(parseCidr('fd00:ec2::254')!)).toBe('fd00:ec2::254/128');
    expect(formatCidr(parseCidr('0.0.0.0/0')!)).toBe('0.0.0.0/0');
  });

  it('refuses malformed ranges', () => {
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/08', '10.0.0.0/-1', '/8', 'fe80::1%eth0/64'])
      expect(parseCidr(bad), bad).toBeNull();
  });

  it('contains exactly the addresses of its prefix, of its own family only', () => {
    const linkLocal = parseCidr('169.254.0.0/16')!;
    expect(cidrContains(linkLocal, ip('169.254.169.254'))).toBe(true);
    expect(cidrContains(linkLocal, ip('169.254.0.0'))).toBe(true);
    expect(cidrContains(linkLocal, ip('169.255.0.0'))).toBe(false);
    expect(cidrContains(linkLocal, ip('169.253.255.255'))).toBe(false);
    expect(cidrContains(linkLocal, ip('::ffff:169.254.169.254'))).toBe(false);
    const v6 = parseCidr('fe80::/10')!;
    expect(cidrContains(v6, ip('fe80::1'))).toBe(true);
    expect(cidrContains(v6, ip('febf:ffff::1'))).toBe(true);
    expect(cidrContains(v6, ip('fec0::1'))).toBe(false);
    const odd = parseCidr('10.0.0.0/13')!;
    expect(cidrContains(odd, ip('10.7.255.255'))).toBe(true);
    expect(cidrContains(odd, ip('10.8.0.0'))).toBe(false);
    expect(cidrContains(parseCidr('0.0.0.0/0')!, ip('203.0.113.9'))).toBe(true);
    expect(cidrContains(parseCidr('10.1.2.3')!, ip('10.1.2.4'))).toBe(false);
  });
});

describe('embeddedIpv4', () => {
  it('finds the IPv4 address behind mapped, translated, NAT64 and compatible IPv6 addresses', () => {
    const cases: [string, string, string][] = [
      ['::ffff:169.254.169.254', 'IPv4-mapped', '169.254.169.254'],
      ['::ffff:a9fe:a9fe', 'IPv4-mapped', '169.254.169.254'],
      ['0:0:0:0:0:ffff:a9fe:a9fe', 'IPv4-mapped', '169.254.169.254'],
      ['::ffff:0:a9fe:a9fe', 'IPv4-translated', '169.254.169.254'],
      ['64:ff9b::169.254.169.254', 'NAT64', '169.254.169.254'],
      ['::169.254.169.254', 'IPv4-compatible', '169.254.169.254'],
      ['::0.0.0.2', 'IPv4-compatible', '0.0.0.2'],
    ];
    for (const [text, form, v4] of cases) {
      const found = embeddedIpv4(ip(text));
      expect(found?.form, text).toBe(form);
      expect(found && formatIp(found.v4), text).toBe(v4);
    }
  });

  it('finds none in the loopback and unspecified addresses, other IPv6 or IPv4', () => {
    for (const text of ['::1', '::', 'fe80::a9fe:a9fe', '2001:db8::a9fe:a9fe', '64:ff9b:1::a9fe:a9fe', '10.0.0.1'])
      expect(embeddedIpv4(ip(text)), text).toBeNull();
  });
});
