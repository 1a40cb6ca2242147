import { PerformanceObserver, constants } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { createGcPacer } from '../../../src/runtime/node/gc-pacer.js';

const MiB = 1024 * 1024;

/** Young-generation collections seen while `work` runs. */
async function minorCollections(work: () => void): Promise<number> {
  let seen = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries())
      if (
        ((entry as { detail?: unknown }).detail as { kind?: number } | undefined)?.kind ===
        constants.NODE_PERFORMANCE_GC_MINOR
      )
        seen++;
  });
  observer.observe({ entryTypes: ['gc'] });
  work();
  // GC entries are delivered asynchronously.
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  return seen;
}

describe('createGcPacer', () => {
  it('collects the young generation once per 16 MiB of body, and not before', async () => {
    const pace = createGcPacer();
    // 15.9 MiB in small steps: no collection of ours (this loop allocates next to nothing to cause one of V8).
    expect(await minorCollections(() => Array.from({ length: 159 }, () => pace(MiB / 10)))).toBeLessThanOrEqual(1);
    // 10 x 16 MiB: 10 collections.
    expect(await minorCollections(() => Array.from({ length: 10 }, () => pace(16 * MiB)))).toBeGreaterThanOrEqual(10);
  });
});
