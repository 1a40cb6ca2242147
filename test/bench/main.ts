/**
 * `npm run bench [-- <case> ...]`: prepares its own data and servers on 127.0.0.1, runs each case several times after
 * a warm-up and prints one table (case, medians, ratio to the same-run baseline, peak RSS). Sizes and run counts can
 * be lowered for a quick look with BENCH_SCALE=0.1 and BENCH_RUNS=1.
 */
import { agentFirstSync } from './cases/agent-first-sync.js';
import { agentIdlePoll } from './cases/agent-idle-poll.js';
import { agentPublishLatency } from './cases/agent-publish-latency.js';
import { coalesce } from './cases/coalesce.js';
import { coldFetch } from './cases/cold-fetch.js';
import { limits } from './cases/limits.js';
import { memory } from './cases/memory.js';
import { revalidation } from './cases/revalidation.js';
import { s3Ingest } from './cases/s3-ingest.js';
import { printTable, type Row } from './harness.js';

const scale = Number(process.env.BENCH_SCALE ?? '1');
const runs = Number(process.env.BENCH_RUNS ?? '3');
const GiB = 1 << 30;

const CASES: Record<string, () => Promise<Row[]>> = {
  'cold-fetch': () => coldFetch({ bytes: Math.round(GiB * scale), runs }),
  coalesce: () => coalesce({ bytes: Math.round((GiB / 4) * scale), runs }),
  memory: () => memory({ small: Math.round((GiB / 4) * scale), large: Math.round(4 * GiB * scale) }),
  limits: () => limits({ bytes: Math.round(GiB * scale), coldBytes: Math.round(GiB * scale), runs }),
  revalidation: () => revalidation({ seconds: 10 * scale }),
  's3-ingest': () => s3Ingest({ bytes: Math.round(2 * GiB * scale), runs }),
  'agent-first-sync': () => agentFirstSync({ files: Math.round(1000 * scale), runs }),
  'agent-idle-poll': () => agentIdlePoll({ names: Math.round(10_000 * scale), polls: Math.max(10, 10 * runs) }),
  'agent-publish-latency': () => agentPublishLatency({ respins: Math.max(5, Math.round(20 * scale)) }),
};

async function main() {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !(w in CASES));
  if (unknown.length) {
    console.error(`unknown case(s): ${unknown.join(', ')}; known: ${Object.keys(CASES).join(', ')}`);
    process.exit(2);
  }
  const rows: Row[] = [];
  for (const name of wanted.length ? wanted : Object.keys(CASES)) {
    console.error(`bench: ${name} ...`);
    rows.push(...(await CASES[name]!()));
  }
  console.log(`\nmachine: ${(await import('node:os')).cpus().length} cores, node ${process.version}`);
  printTable(rows);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
