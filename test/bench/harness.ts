/**
 * Benchmark plumbing: run a command several times after a warm-up, take medians, compare with a baseline measured in
 * the same run (ratios, never absolute targets: machines here are noisy), and print one table.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const RSS_REPORT = fileURLToPath(new URL('../../../test/bench/rss-report.mjs', import.meta.url));
export const CLI = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));

export interface Measured {
  readonly seconds: number;
  /** Peak RSS of the measured node process, MiB (null for non-node baselines). */
  readonly peakRssMiB: number | null;
}

export interface Row {
  readonly name: string;
  readonly pxecache: number;
  readonly baseline: number | null;
  readonly baselineName: string;
  readonly unit: string;
  /** Decimals shown for `pxecache` and `baseline` (3 unless told: counts read better as 0). */
  readonly digits?: number;
  readonly peakRssMiB: number | null;
  readonly target: string;
  readonly met: boolean | null;
  readonly note?: string;
}

/** Runs `cmd args` (shell-free), failing loudly on a non-zero exit; returns wall time and the reported peak RSS. */
export function timed(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stdout.resume();
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.length > 1_000_000) err = err.slice(-100_000);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}\n${err.slice(-4000)}`));
      const m = /\{"bench":"maxrss","kib":(\d+)\}/.exec(err);
      resolve({ seconds, peakRssMiB: m ? Number(m[1]) / 1024 : null });
    });
  });
}

/** A shell pipeline (baselines such as `curl ... | sha256sum`). */
export function timedShell(script: string, env: NodeJS.ProcessEnv = process.env): Promise<Measured> {
  return timed('bash', ['-o', 'pipefail', '-c', script], env);
}

/** The pxecache CLI as an operator runs it (the bin, with its own node flags), with the peak-RSS reporter preloaded. */
export function pxecache(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Measured> {
  const NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --import ${RSS_REPORT}`.trim();
  return timed(CLI, args, { ...env, NODE_OPTIONS });
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** `runs` measured repetitions after `warmup` discarded ones; `prepare` runs before each (untimed). */
export async function repeat(
  runs: number,
  warmup: number,
  once: () => Promise<Measured>,
  prepare: () => Promise<void> = async () => {},
): Promise<{ seconds: number; peakRssMiB: number | null; all: number[] }> {
  const all: number[] = [];
  let peak: number | null = null;
  for (let i = 0; i < warmup + runs; i++) {
    await prepare();
    const m = await once();
    const rss = m.peakRssMiB === null ? '' : `, peak RSS ${m.peakRssMiB.toFixed(0)} MiB`;
    console.error(`  ${i < warmup ? 'warm-up' : `run ${i - warmup + 1}/${runs}`}: ${m.seconds.toFixed(3)} s${rss}`);
    if (i < warmup) continue;
    all.push(m.seconds);
    if (m.peakRssMiB !== null) peak = Math.max(peak ?? 0, m.peakRssMiB);
  }
  return { seconds: median(all), peakRssMiB: peak, all };
}

export function printTable(rows: readonly Row[]): void {
  const head = ['case', 'pxecache', 'baseline', 'ratio', 'peak RSS', 'target', 'met'];
  const lines = rows.map((r) => [
    r.name,
    `${r.pxecache.toFixed(r.digits ?? 3)} ${r.unit}`,
    r.baseline === null ? '-' : `${r.baseline.toFixed(r.digits ?? 3)} ${r.unit} (${r.baselineName})`,
    r.baseline === null || r.baseline === 0 ? '-' : (r.pxecache / r.baseline).toFixed(2),
    r.peakRssMiB === null ? '-' : `${r.peakRssMiB.toFixed(0)} MiB`,
    r.target,
    r.met === null ? '-' : r.met ? 'yes' : 'NO',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cols: readonly string[]) => `| ${cols.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  console.log(fmt(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const l of lines) console.log(fmt(l));
  for (const r of rows) if (r.note) console.log(`  ${r.name}: ${r.note}`);
}
