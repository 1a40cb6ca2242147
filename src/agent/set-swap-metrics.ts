/**
 * The agent's respin-set metrics in the Prometheus text format (0.0.4): written to `<state-dir>/metrics.prom` for
 * node_exporter's textfile collector after every pass that changed something, and appended to `/metrics` when the
 * agent runs inside `pxecache serve`. No labels: names and prefixes are unbounded (and not for an open scrape).
 */
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpName } from './layout.js';

/** One set's link renames in one pass: from the start of the first rename to the end of the last. */
export interface SetSwap {
  readonly prefix: string;
  /** The names whose links moved, in rename order. */
  readonly names: readonly string[];
  readonly windowNs: number;
}

export interface SetSwapMetrics {
  observe(swaps: readonly SetSwap[]): void;
  /** A held set was swapped: every member done (`complete`), or `--set-hold` ran out (`expired`). */
  holdEnded(result: 'complete' | 'expired'): void;
  render(): string;
}

/** Down to 1 µs: two renames back to back take tens of microseconds; the target is under 1 ms. */
const BUCKETS = [1e-6, 1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 1e-2, 0.1, 1];
export const METRICS_FILE = 'metrics.prom';

export function createSetSwapMetrics(): SetSwapMetrics {
  const counts = BUCKETS.map(() => 0);
  let count = 0;
  let sum = 0;
  let max = 0;
  const holds = { complete: 0, expired: 0 };
  return {
    observe(swaps) {
      for (const { windowNs } of swaps) {
        const s = windowNs / 1e9;
        count++;
        sum += s;
        max = Math.max(max, s);
        BUCKETS.forEach((le, i) => void (s <= le && counts[i]!++));
      }
    },
    holdEnded(result) {
      holds[result]++;
    },
    render() {
      const h = 'pxecache_agent_set_swap_window_seconds';
      return [
        `# HELP ${h} Time between the first and the last link rename of one respin set in one agent pass.`,
        `# TYPE ${h} histogram`,
        ...BUCKETS.map((le, i) => `${h}_bucket{le="${le}"} ${counts[i]}`),
        `${h}_bucket{le="+Inf"} ${count}`,
        `${h}_sum ${sum}`,
        `${h}_count ${count}`,
        '# HELP pxecache_agent_set_swap_window_max_seconds Longest set swap window since the agent started.',
        '# TYPE pxecache_agent_set_swap_window_max_seconds gauge',
        `pxecache_agent_set_swap_window_max_seconds ${max}`,
        '# HELP pxecache_agent_set_swaps_total Respin sets whose links moved (one per set per pass).',
        '# TYPE pxecache_agent_set_swaps_total counter',
        `pxecache_agent_set_swaps_total ${count}`,
        '# HELP pxecache_agent_set_holds_total Held sets swapped: every member done (complete) or --set-hold ran out.',
        '# TYPE pxecache_agent_set_holds_total counter',
        `pxecache_agent_set_holds_total{result="complete"} ${holds.complete}`,
        `pxecache_agent_set_holds_total{result="expired"} ${holds.expired}`,
        '',
      ].join('\n');
    },
  };
}

/** Atomically (temp + rename): the textfile collector must never read half a file. Its temp name has no `.prom`. */
export async function writeMetricsFile(stateDir: string, text: string): Promise<void> {
  const tmp = join(stateDir, tmpName());
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, join(stateDir, METRICS_FILE));
}
