import { describe, expect, it } from 'vitest';
import { createFailureLimiter } from '../../../src/core/auth-failures.js';

function limiter(limit = 3, maxAddresses?: number) {
  const clock = {
    t: 1_000_000,
    now() {
      return this.t;
    },
  };
  const l = createFailureLimiter({ limit, windowMs: 60_000, clock, ...(maxAddresses ? { maxAddresses } : {}) });
  return { l, clock };
}

describe('createFailureLimiter: failed bearer-token attempts per address', () => {
  it('blocks an address after `limit` failures within the window, for the rest of the window only', () => {
    const { l, clock } = limiter(3);
    l.fail('192.0.2.7');
    clock.t += 10_000;
    l.fail('192.0.2.7');
    expect(l.retryAfter('192.0.2.7')).toBe(0);
    clock.t += 10_000;
    l.fail('192.0.2.7');
    // The first failure (20 s ago) leaves the window in 40 s.
    expect(l.retryAfter('192.0.2.7')).toBe(40);
    clock.t += 39_500;
    expect(l.retryAfter('192.0.2.7')).toBe(1);
    clock.t += 500;
    expect(l.retryAfter('192.0.2.7')).toBe(0);
    // One more failure re-blocks: two of the three are still in the window.
    l.fail('192.0.2.7');
    expect(l.retryAfter('192.0.2.7')).toBe(10);
  });

  it('keeps addresses apart, and counts an IPv4-mapped peer as its IPv4 address', () => {
    const { l } = limiter(2);
    l.fail('192.0.2.7');
    l.fail('::ffff:192.0.2.7');
    expect(l.retryAfter('192.0.2.7')).toBeGreaterThan(0);
    expect(l.retryAfter('::FFFF:192.0.2.7')).toBeGreaterThan(0);
    expect(l.retryAfter('192.0.2.8')).toBe(0);
    expect(l.retryAfter('2001:db8::1')).toBe(0);
  });

  it('does nothing with limit 0', () => {
    const { l } = limiter(0);
    for (let i = 0; i < 100; i++) l.fail('192.0.2.7');
    expect(l.retryAfter('192.0.2.7')).toBe(0);
  });

  it('forgets the least recently failing address beyond maxAddresses (bounded memory)', () => {
    const { l, clock } = limiter(1, 2);
    l.fail('192.0.2.1');
    clock.t += 1;
    l.fail('192.0.2.2');
    clock.t += 1;
    l.fail('192.0.2.3');
    expect(l.retryAfter('192.0.2.1')).toBe(0);
    expect(l.retryAfter('192.0.2.2')).toBeGreaterThan(0);
    expect(l.retryAfter('192.0.2.3')).toBeGreaterThan(0);
  });
});
