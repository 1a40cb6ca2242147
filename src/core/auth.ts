import { ConfigError } from './errors.js';
import type { HasherFactory } from './ports.js';

/**
 * Bearer tokens for the native API and agents (DESIGN.md: "Agents and the native API use bearer tokens with scopes").
 * A server keeps only the sha256 of each token, so no config file, environment or process listing holds a usable
 * credential; `pxecache token` makes a token and prints the line to configure. Foreman sends no bearer token: it
 * authenticates with a client certificate whose CN must be in `trustedHosts` (smart-proxy's trusted_hosts), and over
 * plain HTTP the smart-proxy routes are guarded by the peer address instead (http/auth.ts).
 */

export const SCOPES = ['read', 'fetch', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface TokenRecord {
  /** Who holds the token (a site, an agent, an operator); named in logs and 403s, never secret. */
  readonly id: string;
  /** Lowercase hex sha256 of the token's UTF-8 bytes. */
  readonly sha256: string;
  readonly scopes: readonly Scope[];
}

/** The configured tokens, read on every request so that a reloaded `--tokens-file` applies without a restart. */
export interface TokenSet {
  current(): readonly TokenRecord[];
  replace(tokens: readonly TokenRecord[]): void;
}

export function createTokenSet(initial: readonly TokenRecord[]): TokenSet {
  let tokens: readonly TokenRecord[] = Object.freeze([...initial]);
  return {
    current: () => tokens,
    replace(next) {
      tokens = Object.freeze([...next]);
    },
  };
}

/** What the HTTP layer enforces; built once at start by `authSettings` (only the token set changes afterwards). */
export interface AuthSettings {
  readonly tokens: TokenSet;
  /**
   * The native API answers 401 to a request without a valid bearer token. Tokens present in `tokens` are required
   * whatever this says (see `tokensRequired`): a file that gains tokens while serving makes them count.
   */
  readonly requireToken: boolean;
  /** Smart-proxy routes over plain HTTP accept non-loopback peers (`--open-smart-proxy`); else loopback-only. */
  readonly openSmartProxy: boolean;
  /**
   * Lowercase client-certificate CNs allowed to call the smart-proxy routes over HTTPS (smart-proxy's
   * trusted_hosts); empty refuses every certificate.
   */
  readonly trustedHosts: readonly string[];
  /** Failed bearer-token attempts per remote address and minute before it gets 429; 0 turns the limit off. */
  readonly failureLimit: number;
}

export const DEFAULT_FAILURE_LIMIT = 10;

/** No tokens, smart-proxy routes loopback-only over HTTP, no trusted client certificate. */
export function noAuth(): AuthSettings {
  return Object.freeze({
    tokens: createTokenSet([]),
    requireToken: false,
    openSmartProxy: false,
    trustedHosts: [],
    failureLimit: DEFAULT_FAILURE_LIMIT,
  });
}

export function tokensRequired(auth: AuthSettings): boolean {
  return auth.requireToken || auth.tokens.current().length > 0;
}

/**
 * Whether a verified client certificate may call the smart-proxy routes. Its CN only, compared case-insensitively,
 * as smart-proxy does (`https_cert_cn`, then `trusted_hosts.include?(fqdn.downcase)`); subjectAltName entries are
 * not consulted, as smart-proxy ignores them: Puppet-CA certificates carry dns_alt_names shared by several hosts.
 */
export function isTrustedClient(auth: AuthSettings, cn: string | null): boolean {
  return cn !== null && auth.trustedHosts.includes(cn.toLowerCase());
}

/** `--trusted-hosts foreman.example.com,Foreman2.example.com` -> lowercase names; a ConfigError naming bad entries. */
export function parseTrustedHosts(text: string): string[] {
  const names = text
    .split(',')
    .map((n) => n.trim().toLowerCase())
    .filter((n) => n !== '');
  const bad = names.filter((n) => !/^[^\s*]{1,255}$/.test(n));
  if (bad.length)
    throw new ConfigError([
      `--trusted-hosts: ${bad.map((n) => JSON.stringify(n)).join(', ')}: ` +
        'expected certificate CNs (no spaces, no wildcards) separated by ","',
    ]);
  return [...new Set(names)];
}

/** No ":" or ",": the one-line form separates fields and entries with them. */
export const TOKEN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const TOKEN_ID_RULE = 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit';
/** Marks a token as one (secret scanners, and telling a token from its hash in a misfilled config). */
const TOKEN_PREFIX = 'pxc_';

export const LIST_FORMAT = '<id>:<scope>[+<scope>...]:<sha256 hex>';

/** `admin` implies every scope. */
export function hasScope(token: TokenRecord, scope: Scope): boolean {
  return token.scopes.includes('admin') || token.scopes.includes(scope);
}

/**
 * Parses and merges the two configured forms, reporting every problem at once with its position:
 * `--tokens` (`PXECACHE_TOKENS`), entries `<id>:<scope>[+<scope>...]:<sha256>` separated by ","; and the
 * `--tokens-file` JSON document `{"tokens": [{"id", "sha256", "scopes": [...]}]}`.
 */
export function readTokens(sources: { list?: string; file?: { path: string; text: string } }): TokenRecord[] {
  const issues: string[] = [];
  const found: { where: string; record: TokenRecord }[] = [];
  const add = (where: string, id: unknown, scopes: unknown, sha256: unknown) => {
    const before = issues.length;
    if (typeof id !== 'string' || !TOKEN_ID.test(id))
      issues.push(`${where}: id ${JSON.stringify(id)} ${TOKEN_ID_RULE}`);
    const scopeList = checkScopes(scopes, (m) => issues.push(`${where}: ${m}`));
    if (typeof sha256 === 'string' && sha256.startsWith(TOKEN_PREFIX))
      issues.push(`${where}: holds a token, not its sha256: configure the sha256 "pxecache token" printed`);
    else if (typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256))
      issues.push(`${where}: sha256 must be the 64 hex digits of the token's sha256 (as "pxecache token" prints)`);
    if (issues.length === before)
      found.push({ where, record: { id: id as string, sha256: (sha256 as string).toLowerCase(), scopes: scopeList } });
  };

  if (sources.list !== undefined) {
    const entries = sources.list.split(',').map((e) => e.trim());
    entries.forEach((entry, i) => {
      if (entry === '') return;
      const fields = entry.split(':');
      const where = `--tokens entry ${i + 1}${TOKEN_ID.test(fields[0] ?? '') ? ` ("${fields[0]}")` : ''}`;
      if (fields.length !== 3) issues.push(`${where}: expected ${LIST_FORMAT}, got ${fields.length} field(s)`);
      else add(where, fields[0], fields[1]?.split('+'), fields[2]);
    });
  }

  if (sources.file) {
    const label = `--tokens-file ${sources.file.path}`;
    let doc: unknown;
    try {
      doc = JSON.parse(sources.file.text);
    } catch (err) {
      issues.push(`${label}: not JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    const tokens = (doc as { tokens?: unknown } | null | undefined)?.tokens;
    if (doc !== undefined && !Array.isArray(tokens)) issues.push(`${label}: expected {"tokens": [...]}`);
    if (Array.isArray(tokens))
      tokens.forEach((t: unknown, i) => {
        const o = (t ?? {}) as Record<string, unknown>;
        const id = o['id'];
        const where = `${label}: tokens[${i}]${typeof id === 'string' && TOKEN_ID.test(id) ? ` ("${id}")` : ''}`;
        if (typeof t !== 'object' || t === null || Array.isArray(t)) return void issues.push(`${where}: not an object`);
        const unknown = Object.keys(o).filter((k) => !['id', 'sha256', 'scopes', 'comment'].includes(k));
        if (unknown.length)
          issues.push(`${where}: unknown field(s) ${unknown.join(', ')} (id, sha256, scopes, comment)`);
        else add(where, id, o['scopes'], o['sha256']);
      });
  }

  for (const [i, a] of found.entries())
    for (const b of found.slice(i + 1)) {
      if (a.record.id === b.record.id) issues.push(`${b.where}: id "${b.record.id}" is already used by ${a.where}`);
      else if (a.record.sha256 === b.record.sha256) issues.push(`${b.where}: same sha256 as ${a.where}`);
    }
  if (issues.length) throw new ConfigError(issues);
  return found.map((f) => f.record);
}

/** `read+fetch` (`pxecache token --scopes`); throws a ConfigError naming `label`. */
export function parseScopes(text: string, label: string): Scope[] {
  const issues: string[] = [];
  const scopes = checkScopes(text.split(/[+,]/), (m) => issues.push(`${label}: ${m}`));
  if (issues.length) throw new ConfigError(issues);
  return scopes;
}

function checkScopes(value: unknown, issue: (message: string) => void): Scope[] {
  const all = SCOPES.join(', ');
  if (!Array.isArray(value) || value.length === 0) {
    issue(`scopes must be a non-empty list of ${all}`);
    return [];
  }
  const bad = value.filter((s) => !(SCOPES as readonly unknown[]).includes(s));
  if (bad.length) issue(`scope(s) ${bad.map((s) => JSON.stringify(s)).join(', ')} not one of ${all}`);
  return [...new Set(value as Scope[])];
}

/**
 * The enforcement that follows from the configuration, or a ConfigError: a server reachable from the network must
 * not serve the native API unauthenticated unless the operator says so. Configured tokens are always required, on
 * loopback too (an operator who made tokens expects them to count; the in-process agent of `serve --tftp-root` reads
 * the store directly and needs none).
 */
export function authSettings(opts: {
  host: string;
  tokens: readonly TokenRecord[];
  insecureNoAuth: boolean;
  openSmartProxy: boolean;
  trustedHosts?: readonly string[];
  failureLimit?: number;
}): AuthSettings {
  const networked = !isLoopback(opts.host);
  if (opts.insecureNoAuth && opts.tokens.length > 0)
    throw new ConfigError([
      '--insecure-no-auth: contradicts the configured tokens (--tokens, --tokens-file): drop one',
    ]);
  if (networked && opts.tokens.length === 0 && !opts.insecureNoAuth)
    throw new ConfigError([
      `--host ${opts.host}: a non-loopback address needs bearer tokens for the native API: configure --tokens-file ` +
        `or --tokens (PXECACHE_TOKENS), made with "pxecache token --id <name> --scopes read", or pass ` +
        `--insecure-no-auth to serve it unauthenticated`,
    ]);
  return Object.freeze({
    tokens: createTokenSet(opts.tokens),
    requireToken: opts.tokens.length > 0 || (networked && !opts.insecureNoAuth),
    openSmartProxy: opts.openSmartProxy,
    trustedHosts: Object.freeze([...(opts.trustedHosts ?? [])]),
    failureLimit: opts.failureLimit ?? DEFAULT_FAILURE_LIMIT,
  });
}

/**
 * The CN of a certificate subject written as RFC 4514 / 2253 text (`CN=foreman.example.com,O=Example`), as platforms
 * terminating mutual TLS report it (Cloudflare's certSubjectDN, API Gateway's clientCert.subjectDN); null when it
 * has none or several.
 */
export function commonNameOf(subjectDN: string): string | null {
  const cns = [...subjectDN.matchAll(/(?:^|,)\s*CN=((?:\\.|[^,\\])*)/gi)].map((m) => m[1] ?? '');
  return cns.length === 1 ? (cns[0] as string).replace(/\\(.)/g, '$1') : null;
}

/**
 * Auth of a fetcher hosted on the Internet (Workers, Lambda), from its `serve`-style settings: bearer tokens are
 * required (`howToSet` says how to provide them there), client certificates come from the platform's mutual TLS.
 */
export function hostedAuth(
  settings: {
    readonly tokens?: string | undefined;
    readonly 'open-smart-proxy': boolean;
    readonly 'trusted-hosts'?: string | undefined;
    readonly 'auth-failure-limit': number;
  },
  howToSet: string,
): AuthSettings {
  const tokens = readTokens(settings.tokens !== undefined ? { list: settings.tokens } : {});
  if (tokens.length === 0)
    throw new ConfigError([
      `--tokens: the fetcher answers on the Internet, so the native API needs bearer tokens: make one with ` +
        `"pxecache token --id <name> --scopes admin" and ${howToSet}`,
    ]);
  // Not a loopback host: `authSettings` requires a token on every native route.
  return authSettings({
    host: '0.0.0.0',
    tokens,
    insecureNoAuth: false,
    openSmartProxy: settings['open-smart-proxy'],
    trustedHosts: parseTrustedHosts(settings['trusted-hosts'] ?? ''),
    failureLimit: settings['auth-failure-limit'],
  });
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped, as a dual-stack socket reports it) and "localhost". */
export function isLoopback(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (a === 'localhost' || a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a.startsWith('::ffff:') ? a.slice(7) : a);
}

/**
 * Finds the record whose sha256 matches the presented token's. Every record is compared, in full, whatever matched:
 * the time taken says nothing about how much of which hash was right. A TokenSet is read at each call (rotation).
 */
export function createTokenVerifier(
  tokens: readonly TokenRecord[] | TokenSet,
  hasher: HasherFactory,
): (presented: string) => Promise<TokenRecord | null> {
  const current = 'current' in tokens ? () => tokens.current() : () => tokens;
  return async (presented) => {
    const digest = await hashToken(presented, hasher);
    let match: TokenRecord | null = null;
    for (const record of current()) {
      const equal = constantTimeEqual(digest, record.sha256);
      if (equal && match === null) match = record;
    }
    return match;
  };
}

/** String equality without an early exit: the loop always runs over the longer input. */
export function constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  // charCodeAt past the end is NaN, and NaN | 0 is 0; the length check above already made a difference count.
  for (let i = 0; i < n; i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}

export function hashToken(token: string, hasher: HasherFactory): Promise<string> {
  const h = hasher();
  h.update(new TextEncoder().encode(token));
  return h.digest();
}

/** 256 random bits, base64url, behind a recognisable prefix. */
export function newToken(random: (bytes: Uint8Array) => Uint8Array = (b) => crypto.getRandomValues(b)): string {
  const bytes = random(new Uint8Array(32));
  const b64 = btoa(String.fromCharCode(...bytes));
  return TOKEN_PREFIX + b64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The `--tokens` entry for a record. */
export function tokenListEntry(record: TokenRecord): string {
  return `${record.id}:${record.scopes.join('+')}:${record.sha256}`;
}
