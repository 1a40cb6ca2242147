/**
 * The bounded CI run of the agent crash harness (agent-crash.ts; `npm run soak` runs the same with hundreds of
 * cycles): 20 cycles of respin, publish, agent started and SIGKILLed at a random point, with 8 real TFTP readers.
 * Needs root, tftpd-hpa, tftp-hpa and the built CLI (`npm run build`).
 */
import { describe, expect, it } from 'vitest';
import { assertTftpTools } from '../helpers/tftp.js';
import { formatSummary, runAgentCrash } from './agent-crash.js';

const CYCLES = Number(process.env['AGENT_CRASH_CYCLES'] ?? 20);

describe('agent killed with SIGKILL at random points while 8 TFTP clients read', () => {
  it(
    `serves only complete published versions, never a dangling link, and leaves no temporaries (${CYCLES} cycles)`,
    async () => {
      assertTftpTools();
      const summary = await runAgentCrash({ cycles: CYCLES, readers: 8 });
      const text = formatSummary(summary);
      console.log(text);
      expect(summary.problems, text).toEqual([]);
      expect(summary.kills, text).toBe(CYCLES);
      // Guards against a run that checked nothing: every reader completes at least one read per cycle.
      expect(summary.readsChecked, text).toBeGreaterThanOrEqual(CYCLES * 8);
      expect(summary.frozenReadsChecked, text).toBeGreaterThanOrEqual(CYCLES * 8);
      expect({
        bad: summary.badReads,
        failed: summary.failedReads,
        dangling: summary.danglingLinks,
        left: summary.tempsLeft,
      }).toEqual({ bad: 0, failed: 0, dangling: 0, left: 0 });
    },
    Math.max(600_000, CYCLES * 15_000),
  );
});
