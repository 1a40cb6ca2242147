import { describe, expect, it } from 'vitest';
import { acquireLease, hasLiveLease, leaseEnded, releaseLease, renewLease } from '../../../src/core/leases.js';
import { createMemoryStore } from '../../../src/storage/memory-store.js';

function setup() {
  let now = 1_000;
  const clock = { now: () => now };
  const store = createMemoryStore();
  const opts = (owner: string) => ({ store, clock, ttlMs: 1_000, owner });
  return { store, clock, opts, advance: (ms: number) => (now += ms) };
}

describe('fetch leases', () => {
  it('gives exactly one owner among 16 concurrent acquirers', async () => {
    const { opts } = setup();
    const got = await Promise.all(
      Array.from({ length: 16 }, (_, i) => acquireLease(opts(`p${i}`), 'boot/t', 'u1', 'http://h/t', `job${i}`)),
    );
    expect(got.filter((g) => g.kind === 'owner')).toHaveLength(1);
  });

  it('lets the next caller take over an expired lease, exactly once', async () => {
    const { store, clock, opts, advance } = setup();
    const first = await acquireLease(opts('a'), 'boot/t', 'u1', 'http://h/t', 'j1');
    expect(first.kind).toBe('owner');
    advance(500);
    expect((await acquireLease(opts('b'), 'boot/t', 'u1', 'http://h/t', 'j2')).kind).toBe('follower');
    advance(600);
    expect(await leaseEnded(store, clock, first.lease)).toBe(true);
    const takers = await Promise.all(
      ['c', 'd', 'e'].map((o) => acquireLease(opts(o), 'boot/t', 'u1', 'http://h/t', o)),
    );
    expect(takers.filter((t) => t.kind === 'owner')).toHaveLength(1);
  });

  it('stays live while renewed, and ends when released', async () => {
    const { store, clock, opts, advance } = setup();
    const { lease } = await acquireLease(opts('a'), 'boot/t', 'u1', 'http://h/t', 'j1');
    for (let i = 0; i < 5; i++) {
      advance(600);
      await renewLease(opts('a'), lease);
      expect(await hasLiveLease(store, clock, 'boot/t')).toBe(true);
    }
    await releaseLease(store, lease);
    expect(await leaseEnded(store, clock, lease)).toBe(true);
    expect(await hasLiveLease(store, clock, 'boot/t')).toBe(false);
  });
});
