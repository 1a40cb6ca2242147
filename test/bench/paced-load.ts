/**
 * An open-loop load generator: requests leave at a fixed rate, evenly spaced (about every millisecond), whatever
 * the server's answers do, over a pool of kept-alive connections (undici). Each latency is measured from the moment
 * the request was handed to the pool, so waiting for a free connection counts (no coordinated omission).
 *
 * Why not autocannon's `overallRate`: it lets each connection send its quota for the second as fast as it can and
 * then pause until the next second, so 2,000 requests/s arrive as bursts at closed-loop speed, and its coordinated-
 * omission correction then adds synthetic samples: the p99 it reports is that of the bursts, not of a steady rate.
 * Runs in a worker thread, so the caller's event loop (a data server answering the server under test) stays free.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Pool } from 'undici';

export interface PacedLoadOptions {
  readonly base: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  /** Bodies sent in turn (the names to revalidate). */
  readonly bodies: readonly string[];
  readonly rate: number;
  readonly seconds: number;
  readonly connections: number;
}

export interface PacedLoadResult {
  readonly sent: number;
  readonly non2xx: number;
  readonly errors: number;
  /** Requests per second actually completed. */
  readonly achieved: number;
  /** Milliseconds, nearest rank. */
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  /** How late the generator itself sent its latest request (its own timer jitter), in ms. */
  readonly maxLateness: number;
}

export function pacedLoad(opts: PacedLoadOptions): Promise<PacedLoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: opts });
    worker.once('message', (r: PacedLoadResult) => resolve(r));
    worker.once('error', reject);
    worker.once('exit', (code) => code !== 0 && reject(new Error(`paced load worker exited ${code}`)));
  });
}

async function run(opts: PacedLoadOptions): Promise<PacedLoadResult> {
  const pool = new Pool(opts.base, { connections: opts.connections, pipelining: 1 });
  const total = Math.max(1, Math.round(opts.rate * opts.seconds));
  const latencies = new Float64Array(total).fill(Number.NaN);
  let sent = 0;
  let finished = 0;
  let non2xx = 0;
  let errors = 0;
  let maxLateness = 0;
  const interval = 1000 / opts.rate;
  const start = performance.now() + 20;
  await new Promise<void>((allDone) => {
    const fire = (i: number) => {
      const at = performance.now();
      maxLateness = Math.max(maxLateness, at - (start + i * interval));
      const body = opts.bodies[i % opts.bodies.length] ?? '';
      pool
        .request({ path: opts.path, method: 'POST', headers: opts.headers, body })
        .then(async (res) => {
          await res.body.dump();
          if (res.statusCode < 200 || res.statusCode > 299) non2xx++;
          latencies[i] = performance.now() - at;
        })
        .catch(() => void errors++)
        .finally(() => {
          if (++finished === total) allDone();
        });
    };
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1);
      while (sent < due) fire(sent++);
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
    };
    setTimeout(tick, 20);
  });
  const elapsed = (performance.now() - start) / 1000;
  await pool.close();
  const sorted = Array.from(latencies.filter((x) => !Number.isNaN(x))).sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
  return {
    sent,
    non2xx,
    errors,
    achieved: sorted.length / elapsed,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    maxLateness,
  };
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  void run(workerData as PacedLoadOptions).then((r) => port.postMessage(r));
}
