import type { Clock } from './ports.js';

/**
 * Failed bearer-token attempts per remote address in a sliding window (the native API's brute-force brake). After
 * `limit` failures within `windowMs` an address is refused every native API request, with a Retry-After, until the
 * oldest of those failures leaves the window. A blocked address is refused before its token is even looked at: were
 * a valid token still let through, the 429/200 difference would tell a guesser when it hit, and the limit would slow
 * nothing. Successful requests neither count nor reset anything, and other addresses are not affected.
 *
 * Memory stays bounded whatever the peers do: at most `limit` timestamps per address, at most `maxAddresses`
 * addresses (the one that failed least recently is forgotten first).
 */
export interface FailureLimiter {
  /** Whole seconds until `address` may try again; 0 when it is not blocked. */
  retryAfter(address: string): number;
  /** Records one failed attempt from `address`. */
  fail(address: string): void;
}

export function createFailureLimiter(opts: {
  /** Failures allowed within the window; 0 turns the limiter off. */
  limit: number;
  windowMs: number;
  clock: Clock;
  maxAddresses?: number;
}): FailureLimiter {
  const { limit, windowMs, clock } = opts;
  const maxAddresses = opts.maxAddresses ?? 10_000;
  /** Failure times per address, oldest first; Map order = least recently failing first. */
  const failures = new Map<string, number[]>();

  const recent = (key: string, now: number): number[] => {
    const times = (failures.get(key) ?? []).filter((t) => t > now - windowMs);
    if (times.length === 0) failures.delete(key);
    return times;
  };

  return {
    retryAfter(address) {
      if (limit <= 0) return 0;
      const now = clock.now();
      const key = addressKey(address);
      const times = recent(key, now);
      if (times.length < limit) return 0;
      // Only the last `limit` are kept, so times[0] is the failure whose expiry unblocks the address.
      return Math.max(1, Math.ceil(((times[0] as number) + windowMs - now) / 1000));
    },
    fail(address) {
      if (limit <= 0) return;
      const now = clock.now();
      const key = addressKey(address);
      const times = recent(key, now);
      times.push(now);
      failures.delete(key);
      failures.set(key, times.slice(-limit));
      if (failures.size > maxAddresses) {
        const oldest = failures.keys().next().value;
        if (oldest !== undefined) failures.delete(oldest);
      }
    },
  };
}

/** One key per host whatever the socket family: a dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d. */
function addressKey(address: string): string {
  const a = address.toLowerCase();
  return /^::ffff:\d{1,3}(\.\d{1,3}){3}$/.test(a) ? a.slice(7) : a;
}
