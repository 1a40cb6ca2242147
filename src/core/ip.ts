/**
 * IP addresses and CIDR ranges for the upstream policy, in Web-API-only code (no node:net on Workers). Parsing is
 * strict on purpose: it reads what the WHATWG URL parser produced (`new URL().hostname`, which already turned
 * `2852039166`, `0xa9.0xfe.0xa9.0xfe` or `169.254.169.254.` into dotted decimal), what a resolver returned, and
 * what an operator configured. Loose forms (octal, hex, short) are the URL parser's business, never guessed here.
 */

export interface IpAddress {
  readonly family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  readonly bytes: Uint8Array;
}

export interface Cidr {
  /** Host bits are zero. */
  readonly address: IpAddress;
  readonly prefix: number;
}

const DECIMAL_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-f]{1,4}$/;

/** Dotted decimal `a.b.c.d`, each 0-255 without leading zeros (`010` would be octal to a URL parser). */
export function parseIpv4(text: string): IpAddress | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i] ?? '';
    if (!DECIMAL_OCTET.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    bytes[i] = value;
  }
  return { family: 4, bytes };
}

/** RFC 4291 text forms: eight groups, one `::`, an IPv4 tail (`::ffff:1.2.3.4`). Case-insensitive. */
export function parseIpv6(text: string): IpAddress | null {
  const lower = text.toLowerCase();
  const halves = lower.split('::');
  if (halves.length > 2) return null;
  const head = groupsOf(halves[0] ?? '', halves.length === 1);
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? '', true) : [];
  if (head === null || tail === null) return null;
  const words = [...head.flat(), ...tail.flat()];
  if (halves.length === 1 ? words.length !== 8 : words.length > 7) return null;
  const all = [...head.flat(), ...new Array<number>(8 - words.length).fill(0), ...tail.flat()];
  const bytes = new Uint8Array(16);
  all.forEach((word, i) => {
    bytes[2 * i] = word >> 8;
    bytes[2 * i + 1] = word & 0xff;
  });
  return { family: 6, bytes };
}

/** Groups of one side of `::` (one word each, or two for an IPv4 tail); null when malformed. */
function groupsOf(side: string, ipv4TailAllowed: boolean): number[][] | null {
  if (side === '') return [];
  const parts = side.split(':');
  const out: number[][] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] ?? '';
    if (HEX_GROUP.test(part)) {
      out.push([parseInt(part, 16)]);
      continue;
    }
    const v4 = i === parts.length - 1 && ipv4TailAllowed ? parseIpv4(part) : null;
    if (!v4) return null;
    const b = v4.bytes;
    out.push([((b[0] ?? 0) << 8) | (b[1] ?? 0), ((b[2] ?? 0) << 8) | (b[3] ?? 0)]);
  }
  return out;
}

/**
 * Either family. Accepts a URL hostname's brackets (`[::1]`) and a zone (`fe80::1%eth0`, as resolvers return
 * link-local addresses); the zone does not change which range the address is in.
 */
export function parseIp(text: string): IpAddress | null {
  const bracketed = text.startsWith('[') && text.endsWith(']');
  let t = bracketed ? text.slice(1, -1) : text;
  if (!t.includes(':')) return bracketed ? null : parseIpv4(t);
  const zone = t.indexOf('%');
  if (zone !== -1) t = t.slice(0, zone);
  return parseIpv6(t);
}

/** Dotted decimal, or RFC 5952 (lower case, longest zero run as `::`), which is also how URLs serialise IPv6. */
export function formatIp(addr: IpAddress): string {
  const b = addr.bytes;
  if (addr.family === 4) return Array.from(b).join('.');
  const words = Array.from({ length: 8 }, (_, i) => ((b[2 * i] ?? 0) << 8) | (b[2 * i + 1] ?? 0));
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best.len < 2) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}

/** `address/prefix`, or a bare address (a single-address range). Host bits set in the address are cleared. */
export function parseCidr(text: string): Cidr | null {
  if (text.includes('%') || text.includes('[')) return null;
  const slash = text.indexOf('/');
  const address = parseIp(slash === -1 ? text : text.slice(0, slash));
  if (!address) return null;
  const max = address.family === 4 ? 32 : 128;
  if (slash === -1) return { address, prefix: max };
  const p = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) return null;
  const prefix = Number(p);
  return { address: { family: address.family, bytes: masked(address.bytes, prefix) }, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidr.address)}/${cidr.prefix}`;
}

export function cidrContains(cidr: Cidr, addr: IpAddress): boolean {
  if (cidr.address.family !== addr.family) return false;
  const m = masked(addr.bytes, cidr.prefix);
  return m.every((byte, i) => byte === cidr.address.bytes[i]);
}

function masked(bytes: Uint8Array, prefix: number): Uint8Array {
  return bytes.map((byte, i) => {
    const bits = Math.min(8, Math.max(0, prefix - 8 * i));
    return byte & ((0xff00 >> bits) & 0xff);
  });
}

export type Ipv4Form = 'IPv4-mapped' | 'IPv4-translated' | 'IPv4-compatible' | 'NAT64';

/** IPv6 prefixes whose last 32 bits are an IPv4 address that a connection ends up reaching. */
const EMBEDDING: readonly { readonly form: Ipv4Form; readonly cidr: Cidr }[] = [
  // RFC 4291 2.5.5.2: `::ffff:a.b.c.d`; a dual-stack socket connects to a.b.c.d.
  { form: 'IPv4-mapped', cidr: mustCidr('::ffff:0:0/96') },
  // RFC 2765 (SIIT): `::ffff:0:a.b.c.d`.
  { form: 'IPv4-translated', cidr: mustCidr('::ffff:0:0:0/96') },
  // RFC 6052: the well-known NAT64 prefix; a NAT64 gateway connects to a.b.c.d.
  { form: 'NAT64', cidr: mustCidr('64:ff9b::/96') },
  // RFC 4291 2.5.5.1 (deprecated): `::a.b.c.d`. `::` and `::1` are the unspecified and loopback addresses instead.
  { form: 'IPv4-compatible', cidr: mustCidr('::/96') },
];

/** The IPv4 address an IPv6 address stands for (mapped, translated, NAT64, compatible), or null. */
export function embeddedIpv4(addr: IpAddress): { readonly v4: IpAddress; readonly form: Ipv4Form } | null {
  if (addr.family !== 6) return null;
  for (const { form, cidr } of EMBEDDING) {
    if (!cidrContains(cidr, addr)) continue;
    const v4 = addr.bytes.slice(12);
    if (form === 'IPv4-compatible' && v4[0] === 0 && v4[1] === 0 && v4[2] === 0 && (v4[3] ?? 0) <= 1) return null;
    return { v4: { family: 4, bytes: v4 }, form };
  }
  return null;
}

function mustCidr(text: string): Cidr {
  const cidr = parseCidr(text);
  if (!cidr) throw new Error(`bad built-in CIDR ${text}`);
  return cidr;
}
