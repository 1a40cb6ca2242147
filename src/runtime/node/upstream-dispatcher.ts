import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import { Agent, EnvHttpProxyAgent, Pool, type Dispatcher } from 'undici';
import { ConfigError, describe } from '../../core/errors.js';
import type { HostRules } from '../../core/host-rules.js';
import { guardedLookup, type Resolver } from './guarded-lookup.js';

export interface ProxySettings {
  readonly httpProxy?: string;
  readonly httpsProxy?: string;
  readonly noProxy?: string;
}

/**
 * curl's variables (smart-proxy downloads with curl): `http_proxy` for http:// upstreams, `https_proxy` for
 * https://, `no_proxy` for hosts reached directly; the lower-case name wins over the upper-case one. Unlike undici's
 * own reading, https:// never falls back to `http_proxy` (curl does not either). ftp:// is always direct.
 */
export function proxyFromEnv(env: Readonly<Record<string, string | undefined>>): ProxySettings {
  const pick = (name: string) => env[name]?.trim() || env[name.toUpperCase()]?.trim() || undefined;
  const proxyUrl = (name: string) => {
    const value = pick(name);
    if (value === undefined) return undefined;
    // curl reads `proxy:3128` as http://proxy:3128.
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new ConfigError([`${name}: "${value.replace(/\/\/[^/@]*@/, '//***@').slice(0, 80)}" is not a proxy URL`]);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new ConfigError([`${name}: proxy scheme ${url.protocol} is not supported; use http:// or https://`]);
    return withScheme;
  };
  const httpProxy = proxyUrl('http_proxy');
  const httpsProxy = proxyUrl('https_proxy');
  const noProxy = pick('no_proxy');
  return {
    ...(httpProxy ? { httpProxy } : {}),
    ...(httpsProxy ? { httpsProxy } : {}),
    ...(noProxy ? { noProxy } : {}),
  };
}

/** `--upstream-ca-file`: a PEM with at least one certificate, or a ConfigError naming the option. */
export function readCaFile(path: string): string {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`--upstream-ca-file: cannot read ${path}: ${describe(err)}`]);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new ConfigError([`--upstream-ca-file: ${path} holds no PEM certificate`]);
  return pem;
}

export interface DispatcherOptions {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyIdleTimeoutMs: number;
  readonly verifyTls: boolean;
  readonly rules: HostRules;
  readonly extraCaPem?: string;
  readonly proxy?: ProxySettings;
  readonly resolve?: Resolver;
}

/**
 * One dispatcher per scheme. Every connection goes through `guardedLookup`: to the upstream when direct, to the
 * proxy when proxied. The proxy is the operator's configuration, so it passes the deny rules but needs no entry in
 * `--upstream-allow`; through it, the target's name was checked at request time only (the proxy resolves it).
 */
export function createDispatchers(opts: DispatcherOptions): {
  readonly http: Dispatcher;
  readonly https: Dispatcher;
  close(): Promise<void>;
} {
  const lookup = guardedLookup(opts.rules, opts.resolve);
  const tlsOptions = {
    rejectUnauthorized: opts.verifyTls,
    ...(opts.extraCaPem ? { secureContext: secureContextWith(opts.extraCaPem) } : {}),
  };
  const timeouts = {
    headersTimeout: opts.headersTimeoutMs,
    bodyTimeout: opts.bodyIdleTimeoutMs,
    keepAliveTimeout: 4_000,
  };
  const connect = { timeout: opts.connectTimeoutMs, lookup, ...tlsOptions };
  const direct = new Agent({ connect, ...timeouts });
  const via = (uri: string): Dispatcher =>
    new EnvHttpProxyAgent({
      httpProxy: uri,
      httpsProxy: uri,
      noProxy: opts.proxy?.noProxy ?? '',
      // Hosts in no_proxy: a direct connection, checked like any other.
      connect,
      ...timeouts,
      // http:// through an http proxy as an absolute-URI request, as curl does; https:// through CONNECT.
      proxyTunnel: false,
      proxyTls: {
        timeout: opts.connectTimeoutMs,
        lookup: guardedLookup({ deny: opts.rules.deny, allow: null }, opts.resolve),
        ...tlsOptions,
      },
      requestTls: tlsOptions,
      // undici's proxy clients are created without the agent's timeouts; these factories put them back.
      factory: (origin: URL, o: object) => new Pool(origin, { ...o, ...timeouts }),
      clientFactory: (origin: URL, o: object) => new Pool(origin, { ...o, ...timeouts }),
    });
  const http = opts.proxy?.httpProxy ? via(opts.proxy.httpProxy) : direct;
  const https = opts.proxy?.httpsProxy ? via(opts.proxy.httpsProxy) : direct;
  return {
    http,
    https,
    async close() {
      await Promise.all([...new Set([direct, http, https])].map((d) => d.close()));
    },
  };
}

/** The default trust store plus the configured CA: `--upstream-ca-file` adds trust, it does not replace it. */
function secureContextWith(pem: string): tls.SecureContext {
  const defaults =
    (tls as { getCACertificates?: (type: string) => string[] }).getCACertificates?.('default') ?? tls.rootCertificates;
  try {
    return tls.createSecureContext({ ca: [...defaults, pem] });
  } catch (err) {
    throw new ConfigError([`--upstream-ca-file: unusable certificate: ${describe(err)}`]);
  }
}
