import type { BlobProgress } from '../core/bundle.js';

/** Files below this show no progress: they take no time worth watching. */
const MIN_BYTES = 1024 * 1024;
const REDRAW_MS = 250;

/**
 * Progress of large transfers on stderr (stdout is the per-name report scripts read): on a terminal one line redrawn
 * with bytes, percentage and rate; otherwise (a log, CI) one line per file once it is done.
 */
export function createProgress(
  stream: { isTTY?: boolean; write(s: string): unknown } = process.stderr,
  now: () => number = Date.now,
): BlobProgress {
  return (label, size) => {
    if (size < MIN_BYTES) return { add() {}, done() {} };
    const start = now();
    let bytes = 0;
    let drawn = 0;
    const rate = () => `${mib((bytes * 1000) / Math.max(1, now() - start))}/s`;
    return {
      add(n) {
        bytes += n;
        if (!stream.isTTY || now() - drawn < REDRAW_MS) return;
        drawn = now();
        stream.write(
          `\r${label}: ${mib(bytes)} of ${mib(size)} (${Math.floor((bytes * 100) / size)}%), ${rate()}\x1b[K`,
        );
      },
      done() {
        const line = `${label}: ${mib(bytes)} in ${((now() - start) / 1000).toFixed(1)} s, ${rate()}`;
        stream.write(stream.isTTY ? `\r${line}\x1b[K\n` : `${line}\n`);
      },
    };
  };
}

const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
