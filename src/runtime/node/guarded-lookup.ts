import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { PxeError } from '../../core/errors.js';
import { resolvedRefusal, type HostRules } from '../../core/host-rules.js';

/** Every address a host name resolves to. Injected by tests only (a name that resolves to a refused address). */
export type Resolver = (host: string) => Promise<readonly LookupAddress[]>;

export const systemResolver: Resolver = (host) =>
  new Promise((resolve, reject) =>
    dnsLookup(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
  );

/** A resolved address the host rules refuse; the upstream clients report it as `UpstreamError` code `policy`. */
export class PolicyRefusal extends PxeError {
  constructor(message: string) {
    super('policy', message);
  }
}

/**
 * Resolves `host` and checks every address before anything connects (DNS rebinding: the name was checked at request
 * time, what it resolves to now is checked here). One refused address refuses the host: a name that answers both a
 * mirror and the metadata service is not one to trust with either.
 */
export async function resolveChecked(rules: HostRules, host: string, resolve: Resolver): Promise<LookupAddress[]> {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  const family = isIP(bare);
  const addresses = family !== 0 ? [{ address: bare, family }] : await resolve(bare);
  if (addresses.length === 0) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${bare}`), { code: 'ENOTFOUND' });
  for (const { address } of addresses) {
    const refusal = resolvedRefusal(rules, bare, address);
    if (refusal) throw new PolicyRefusal(refusal);
  }
  return [...addresses];
}

/**
 * A `lookup` for `net.connect`/`tls.connect` (undici's `connect` options) that only hands over checked addresses.
 * Node calls it with `all: true` when it races address families (autoSelectFamily, on by default).
 */
export function guardedLookup(rules: HostRules, resolve: Resolver = systemResolver): LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    const cb = callback as (err: Error | null, address: string | LookupAddress[], family?: number) => void;
    resolveChecked(rules, hostname, resolve).then(
      (all) => {
        const f = options.family;
        const wanted = f === 4 || f === 'IPv4' ? 4 : f === 6 || f === 'IPv6' ? 6 : 0;
        const usable = wanted === 0 ? all : all.filter((a) => a.family === wanted);
        const first = usable[0];
        if (!first) {
          cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '');
          return;
        }
        if (options.all) cb(null, usable);
        else cb(null, first.address, first.family);
      },
      (err: Error) => cb(err, ''),
    );
  };
}
