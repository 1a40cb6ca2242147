import { ConfigError } from './errors.js';
import {
  cidrContains,
  embeddedIpv4,
  formatCidr,
  formatIp,
  parseCidr,
  parseIp,
  type Cidr,
  type IpAddress,
} from './ip.js';

/**
 * Which upstream hosts pxecache may fetch from (security issue part 3). A caller chooses the upstream URL, so without
 * rules a fetch is a request forgery into whatever the server can reach. Two moments are checked:
 * - request time (`hostRefusal`): the URL's host as the WHATWG parser normalised it, so every spelling of an address
 *   (decimal, octal, hex, short, trailing dot, IPv4-mapped IPv6) is one address here; a refusal is a 400.
 * - connect time (`resolvedRefusal`): each address a host name resolved to, right before the socket connects (on
 *   Node; see runtime/node/guarded-lookup.ts), so a name that resolves to a refused address (DNS rebinding) fails too.
 * Loopback and private ranges are allowed by default: installation media usually live there, and smart-proxy
 * fetches from them. Link-local (cloud metadata) and "this host" are not.
 */

export type RuleSource = 'default' | '--upstream-deny' | '--upstream-allow';

export type HostRule =
  | { readonly kind: 'cidr'; readonly cidr: Cidr; readonly source: RuleSource; readonly note?: string }
  /** `mirror.example.com`, or `*.example.com` (wildcard: every name below it, not the name itself). */
  | { readonly kind: 'host'; readonly name: string; readonly wildcard: boolean; readonly source: RuleSource };

export interface HostRules {
  /** Never fetched: `DEFAULT_DENY` plus `--upstream-deny`. An IPv6 address standing for an IPv4 one counts as both. */
  readonly deny: readonly HostRule[];
  /** `--upstream-allow`: when set, the only hosts and addresses fetched from. */
  readonly allow: readonly HostRule[] | null;
}

const defaultRule = (cidr: string, note: string): HostRule => {
  const parsed = parseCidr(cidr);
  if (!parsed) throw new Error(`bad built-in CIDR ${cidr}`);
  return { kind: 'cidr', cidr: parsed, source: 'default', note };
};

export const DEFAULT_DENY: readonly HostRule[] = [
  defaultRule('0.0.0.0/8', '"this network": connecting to it reaches this host'),
  defaultRule('169.254.0.0/16', 'IPv4 link-local, where cloud metadata services answer'),
  defaultRule('::/128', 'the unspecified address: connecting to it reaches this host'),
  defaultRule('fe80::/10', 'IPv6 link-local'),
  defaultRule('fd00:ec2::254/128', 'the AWS metadata service over IPv6'),
];

export const DEFAULT_HOST_RULES: HostRules = { deny: DEFAULT_DENY, allow: null };

/** The base rules with `--upstream-allow` and `--upstream-deny` applied; every bad entry reported at once. */
export function withHostLists<P extends HostRules>(base: P, lists: { allow?: string; deny?: string }): P {
  const allow = parseHostList(lists.allow ?? '', '--upstream-allow');
  const deny = parseHostList(lists.deny ?? '', '--upstream-deny');
  const issues = [
    ...allow.issues.map((i) => `--upstream-allow: ${i}`),
    ...deny.issues.map((i) => `--upstream-deny: ${i}`),
  ];
  if (issues.length > 0) throw new ConfigError(issues);
  return {
    ...base,
    deny: [...base.deny, ...deny.rules],
    allow: allow.rules.length > 0 ? [...(base.allow ?? []), ...allow.rules] : base.allow,
  };
}

/**
 * A comma- (or space-) separated list of host names, `*.domain` wildcards, addresses and CIDRs; `issues` name each
 * bad entry (without the option's name).
 */
export function parseHostList(list: string, source: RuleSource): { rules: HostRule[]; issues: string[] } {
  const rules: HostRule[] = [];
  const issues: string[] = [];
  for (const entry of list.split(/[\s,]+/)) {
    if (entry === '') continue;
    const rule = parseEntry(entry, source);
    if (typeof rule === 'string') issues.push(`"${entry.slice(0, 80)}" ${rule}`);
    else rules.push(rule);
  }
  return { rules, issues };
}

function parseEntry(entry: string, source: RuleSource): HostRule | string {
  const cidr = parseCidr(entry);
  if (cidr) return { kind: 'cidr', cidr, source };
  if (/[/:[\]%]/.test(entry)) return 'is not a valid address or CIDR (a.b.c.d/n, x:y::z/n)';
  const wildcard = entry.startsWith('*.');
  const rest = wildcard ? entry.slice(2) : entry;
  if (!/^[^\s/?#@\\*]+$/.test(rest)) return 'is not a host name, "*.domain", address or CIDR';
  let name: string;
  try {
    // The URL parser's normalisation (lower case, IDNA), so entries compare equal to what URLs carry.
    name = new URL(`http://${rest}/`).hostname.replace(/\.$/, '');
  } catch {
    return 'is not a valid host name';
  }
  if (name === '' || parseIp(name)) return 'is not a valid host name; write addresses as dotted decimal or CIDR';
  return { kind: 'host', name, wildcard, source };
}

/** Request time: why the host of an upstream URL (`url.hostname`) may not be fetched, or null. */
export function hostRefusal(rules: HostRules, hostname: string): string | null {
  const addr = parseIp(hostname);
  if (addr) {
    const shown = showAddress(addr);
    const denied = cidrRuleFor(rules.deny, addr);
    if (denied) return `address ${shown} is refused by ${describeRule(denied)}`;
    if (rules.allow && !addressAllowed(rules.allow, addr))
      return `address ${shown} is refused by ${allowListText(rules.allow)}`;
    return null;
  }
  const name = normaliseName(hostname);
  const denied = rules.deny.find((r) => nameMatches(r, name));
  if (denied) return `host ${name} is refused by ${describeRule(denied)}`;
  // A name outside the host entries may still resolve into an allowed CIDR: that is checked at connect time.
  if (rules.allow && !nameAllowed(rules.allow, name) && !rules.allow.some((r) => r.kind === 'cidr'))
    return `host ${name} is refused by ${allowListText(rules.allow)}`;
  return null;
}

/**
 * Connect time: why `host` (as given in the URL) may not be reached at `address`, one of the addresses it resolved
 * to, or null.
 */
export function resolvedRefusal(rules: HostRules, host: string, address: string): string | null {
  const rule = connectRefusal(rules, host, address);
  return rule === null ? null : `resolved ${host} to ${address}, which is refused by ${rule}`;
}

/**
 * The rule that refuses connecting to `address` for `host`, or null. A host allowed by name may resolve anywhere the
 * deny rules allow; any other host only into an allowed CIDR.
 */
export function connectRefusal(rules: HostRules, host: string, address: string): string | null {
  const addr = parseIp(address);
  if (!addr) return 'the host rules: it is not an IP address';
  const denied = cidrRuleFor(rules.deny, addr);
  if (denied) return describeRule(denied);
  if (rules.allow && !nameAllowed(rules.allow, normaliseName(host)) && !addressAllowed(rules.allow, addr))
    return allowListText(rules.allow);
  return null;
}

export function describeRule(rule: HostRule): string {
  const text = ruleText(rule);
  if (rule.source !== 'default') return `${rule.source} ${text}`;
  return rule.kind === 'cidr' && rule.note ? `the default rule ${text} (${rule.note})` : `the default rule ${text}`;
}

function ruleText(rule: HostRule): string {
  if (rule.kind === 'cidr') return formatCidr(rule.cidr);
  return rule.wildcard ? `*.${rule.name}` : rule.name;
}

/** The first CIDR rule holding the address itself or, for an IPv6 address standing for an IPv4 one, that IPv4. */
function cidrRuleFor(rules: readonly HostRule[], addr: IpAddress): HostRule | undefined {
  const v4 = embeddedIpv4(addr)?.v4;
  return rules.find((r) => r.kind === 'cidr' && (cidrContains(r.cidr, addr) || (v4 && cidrContains(r.cidr, v4))));
}

function addressAllowed(rules: readonly HostRule[], addr: IpAddress): boolean {
  return cidrRuleFor(rules, addr) !== undefined;
}

function nameAllowed(rules: readonly HostRule[], name: string): boolean {
  return rules.some((r) => nameMatches(r, name));
}

function nameMatches(rule: HostRule, name: string): boolean {
  if (rule.kind !== 'host') return false;
  return rule.wildcard ? name.endsWith(`.${rule.name}`) : name === rule.name;
}

/** Host names compare without case and without the root's trailing dot (`mirror.example.` is `mirror.example`). */
function normaliseName(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

function showAddress(addr: IpAddress): string {
  const embedded = embeddedIpv4(addr);
  return embedded ? `${formatIp(addr)} (${embedded.form} ${formatIp(embedded.v4)})` : formatIp(addr);
}

function allowListText(allow: readonly HostRule[]): string {
  const shown = allow.slice(0, 6).map(ruleText);
  const more = allow.length > shown.length ? `, ... (${allow.length - shown.length} more)` : '';
  return `--upstream-allow (not in ${shown.join(', ')}${more})`;
}
