/**
 * `npm run bench [-- <case> ...]`: prepares its own data and servers on 127.0.0.1, runs each case several times after
 * a warm-up and prints one table (case, medians, ratio to the same-run baseline, peak RSS). Sizes and run counts can
 * be lowered for a quick look with BENCH_SCALE=0.1 and BENCH_RUNS=1.
 */
import { coldFetch } from './cases/cold-fetch.js';
import { s3Ingest } from './cases/s3-ingest.js';
import { printTable, type Row } from './harness.js';

const scale = Number(process.env.BENCH_SCALE ?? '1');
const runs = Number(process.env.BENCH_RUNS ?? '3');
const GiB = 1 << 30;

const CASES: Record<string, () => Promise<Row[]>> = {
  'cold-fetch': () => coldFetch({ bytes: Math.round(GiB * scale), runs }),
  's3-ingest': () => s3Ingest({ bytes: Math.round(2 * GiB * scale), runs }),
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
