import type { BlobProgress } from '../core/bundle.js';
import type { TransferProgress } from '../core/ports.js';
import { barLine, bytesText, etaText, rateText } from './progress-format.js';

/** Transfers below this show no progress: they take no time worth watching. */
const MIN_BYTES = 1024 * 1024;
/** A terminal is redrawn at most this often (10 times a second). */
const REDRAW_MS = 100;
/** Plain output: a line after this long without one, however slow the transfer. */
const LINE_EVERY_MS = 5000;
/** Plain output: a line each time another this many hundredths of the total have come. */
const LINE_EVERY_PERCENT = 10;

export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  // A method, so that a stream with Node's overloaded write() fits; replaced while bars are drawn (see below).
  write(s: string): unknown;
}

export interface Progress {
  /** Where the core and the agent report bytes (JobDeps.onProgress, AgentOptions.onProgress). */
  readonly update: TransferProgress;
  /** Transfers still open are drawn one last time; the terminal's cursor ends below the bars. */
  close(): void;
}

interface Transfer {
  readonly name: string;
  readonly start: number;
  bytes: number;
  total: number | null;
  /** Plain output: when the last line was written and the step of LINE_EVERY_PERCENT it reached. */
  lineAt: number;
  lineStep: number;
}

/**
 * Progress of large transfers on stderr (stdout is the report scripts read). On a terminal one bar per transfer
 * (bytes, rate, ETA), redrawn in place at most 10 times a second, and a line that stays once a transfer ends;
 * otherwise (a log, CI) plain lines: start, every tenth or 5 s, and done with bytes and rate.
 */
export function createProgressReporter(
  stream: ProgressStream = process.stderr,
  now: () => number = Date.now,
): Progress {
  const tty = stream.isTTY === true;
  const active = new Map<string, Transfer>();
  /** Terminal: bar lines drawn below the finished lines, and lines ended since the last draw. */
  let drawnLines = 0;
  let drawnAt = -Infinity;
  const finished: string[] = [];
  // Log lines written to the same terminal while bars are up would be overwritten by the next redraw: each other
  // write first erases the bars, goes out, and the next update draws them again below it.
  const write = stream.write.bind(stream);
  if (tty)
    stream.write = (...args: Parameters<ProgressStream['write']>) => {
      if (drawnLines > 0) write(`\r\x1b[${drawnLines}A\x1b[J`);
      drawnLines = 0;
      drawnAt = -Infinity;
      return write(...args);
    };

  const draw = () => {
    drawnAt = now();
    const width = Math.max(40, stream.columns || 80);
    const bars = [...active.values()].map((t) => barLine(t, now() - t.start, width - 1));
    let out = drawnLines > 0 ? `\r\x1b[${drawnLines}A` : '\r';
    for (const line of [...finished, ...bars]) out += `${line}\x1b[K\n`;
    if (bars.length < drawnLines) out += '\x1b[J';
    finished.length = 0;
    drawnLines = bars.length;
    write(out);
  };

  const plain = (t: Transfer) => {
    if (t.total !== null && t.bytes >= t.total) return; // the done line follows
    // Integer percent: float fractions would put 0.3 below 0.2 + 0.1 and skip a line.
    const percent = t.total ? Math.floor((t.bytes * 100) / t.total) : 0;
    const step = Math.floor(percent / LINE_EVERY_PERCENT);
    if (now() - t.lineAt < LINE_EVERY_MS && step <= t.lineStep) return;
    t.lineAt = now();
    t.lineStep = step;
    const elapsed = now() - t.start;
    const of = t.total === null ? '' : ` of ${bytesText(t.total)} (${percent}%)`;
    const eta = t.total === null ? '' : `, ETA ${etaText(t.bytes, t.total, elapsed)}`;
    stream.write(`${t.name}: ${bytesText(t.bytes)}${of}, ${rateText(t.bytes, elapsed)}${eta}\n`);
  };

  const endLine = (t: Transfer) => {
    const elapsed = now() - t.start;
    const took = `in ${(elapsed / 1000).toFixed(1)} s, ${rateText(t.bytes, elapsed)}`;
    return t.total === null || t.bytes >= t.total
      ? `${t.name}: done, ${bytesText(t.bytes)} ${took}`
      : `${t.name}: stopped at ${bytesText(t.bytes)} of ${bytesText(t.total)} ${took}`;
  };

  const update: TransferProgress = (name, bytes, total, ended = false) => {
    let t = active.get(name);
    // A name downloaded again (upstream changed during the first download) starts a new transfer.
    if (t && bytes < t.bytes) active.delete(name);
    t = active.get(name);
    if (!t) {
      if (ended || (total === null ? bytes : total) < MIN_BYTES) return;
      t = { name, start: now(), bytes, total, lineAt: now(), lineStep: 0 };
      active.set(name, t);
      if (!tty) stream.write(`${name}: started, ${total === null ? 'size unknown' : bytesText(total)}\n`);
    }
    t.bytes = bytes;
    t.total = total;
    if (ended) {
      active.delete(name);
      if (tty) finished.push(endLine(t));
      else stream.write(`${endLine(t)}\n`);
    }
    if (!tty) {
      if (!ended) plain(t);
    } else if (ended || now() - drawnAt >= REDRAW_MS) draw();
  };

  return {
    update,
    close() {
      if (!tty) return;
      if (active.size || finished.length) draw();
      active.clear();
      drawnLines = 0;
      stream.write = write;
    },
  };
}

/** `pxecache import`'s per-file progress (core/bundle.ts BlobProgress), drawn by the same reporter. */
export function createProgress(reporter: Progress = createProgressReporter()): BlobProgress {
  return (label, size) => {
    let bytes = 0;
    reporter.update(label, 0, size);
    return {
      add(n) {
        bytes += n;
        reporter.update(label, bytes, size);
      },
      done() {
        reporter.update(label, bytes, size, true);
      },
    };
  };
}

/** No progress at all (`--no-progress`). */
export const noProgress: Progress = { update() {}, close() {} };
