import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServeProcess, type ServeProcess } from '../../helpers/serve-process.js';
import { startDataServer } from '../data-server.js';
import { median, type Row } from '../harness.js';
import { bootName, peakRssMiB, postBootFile, resetPeakRss, waitReady } from '../serve-bench.js';

const MiB = 1 << 20;
const PREFIX = 'boot/c';

interface Trial {
  readonly seconds: number;
  readonly upstreamGets: number;
  readonly peakRssMiB: number | null;
}

/**
 * Issue "Performance", coalescing: 200 Foreman-style callers ask a real `pxecache serve` (file store) for the same
 * new file at once. One download must serve them all (exactly one upstream GET), and the last caller must see it
 * ready no later than a lone caller would (wall time from the first POST to `ready` in the status API, against one
 * POST for another new file of the same size on the same server, measured alternately in the same run).
 */
export async function coalesce(opts: { bytes?: number; callers?: number; runs?: number }): Promise<Row[]> {
  const bytes = opts.bytes ?? 256 * MiB;
  const callers = opts.callers ?? 200;
  const runs = opts.runs ?? 3;
  const data = await startDataServer();
  const dir = await mkdtemp(join(tmpdir(), 'pxecache-bench-coalesce-'));
  let serve: ServeProcess | undefined;
  let n = 0;
  // Every trial asks for a URL (and so a name) nobody asked for before: always a cold download.
  const trial = async (server: ServeProcess, count: number): Promise<Trial> => {
    const url = data.url(bytes, `c${++n}`);
    const name = bootName(PREFIX, url);
    const tracked = resetPeakRss(server.pid);
    const start = process.hrtime.bigint();
    // The POSTs all go out before any is awaited; the status poll runs alongside them.
    const posts = Promise.all(Array.from({ length: count }, () => postBootFile(server.url, PREFIX, url)));
    const ready = waitReady(server.url, name);
    await Promise.all([posts, ready]);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    return { seconds, upstreamGets: data.requests(url), peakRssMiB: tracked ? peakRssMiB(server.pid) : null };
  };
  try {
    serve = await startServeProcess(join(dir, 'store'));
    const single: Trial[] = [];
    const many: Trial[] = [];
    // One warm-up pair, then alternating pairs so that drift on a shared machine hits both sides alike.
    for (let i = 0; i < runs + 1; i++) {
      const one = await trial(serve, 1);
      const all = await trial(serve, callers);
      const label = i === 0 ? 'warm-up' : `run ${i}/${runs}`;
      console.error(
        `  ${label}: 1 caller ${one.seconds.toFixed(3)} s, ${callers} callers ${all.seconds.toFixed(3)} s, ` +
          `upstream GETs ${all.upstreamGets}, serve peak RSS ${all.peakRssMiB?.toFixed(0) ?? '?'} MiB`,
      );
      if (i === 0) continue;
      single.push(one);
      many.push(all);
    }
    const seconds = median(many.map((t) => t.seconds));
    const baseline = median(single.map((t) => t.seconds));
    const gets = many.map((t) => t.upstreamGets);
    const peak = maxOf(many.map((t) => t.peakRssMiB));
    const size = `${(bytes / MiB).toFixed(bytes >= MiB ? 0 : 2)} MiB`;
    return [
      {
        name: `coalesce: ${callers} callers, one new ${size} file, serve`,
        pxecache: seconds,
        baseline,
        baselineName: '1 caller, another new file',
        unit: 's',
        peakRssMiB: peak,
        target: '<= 1.1',
        met: seconds <= 1.1 * baseline,
        note:
          `POST -> status ready, medians of ${runs}; per-pair ratios ` +
          `${many.map((t, i) => (t.seconds / (single[i]?.seconds ?? NaN)).toFixed(2)).join(', ')}; ` +
          `serve peak RSS ${fmtMiB(peak)} with ${callers} callers, ` +
          `${fmtMiB(maxOf(single.map((t) => t.peakRssMiB)))} with 1 (VmHWM, reset per trial)`,
      },
      {
        name: `coalesce: upstream GETs for ${callers} callers`,
        pxecache: Math.max(...gets),
        baseline: null,
        baselineName: '',
        unit: 'GETs',
        digits: 0,
        peakRssMiB: null,
        target: '= 1',
        met: gets.every((g) => g === 1),
        note: `per run: ${gets.join(', ')}`,
      },
    ];
  } finally {
    await serve?.stop();
    data.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function maxOf(xs: readonly (number | null)[]): number | null {
  const known = xs.filter((x): x is number => x !== null);
  return known.length ? Math.max(...known) : null;
}

function fmtMiB(x: number | null): string {
  return x === null ? '?' : `${x.toFixed(0)} MiB`;
}
