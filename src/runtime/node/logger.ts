import { pino } from 'pino';
import { prettyFactory } from 'pino-pretty';
import type { LogFields, Logger } from '../../core/ports.js';

type Level = 'debug' | 'info' | 'warn' | 'error';
/** `auto`: human-readable when the stream is a terminal, JSON lines otherwise (journald, a supervisor, a pipe). */
export type LogFormat = 'auto' | 'json' | 'pretty';
/** A batch this large goes out at once rather than at the end of the event-loop turn. */
const MAX_BATCH = 64 * 1024;

/**
 * pino on stderr (stdout stays free for command output such as `pxecache fetch`'s status): JSON lines with `level`
 * as a word and `time` in ISO 8601, or pino-pretty's lines, formatted in this thread (no worker-thread transport: a
 * short-lived `pxecache fetch` must not lose its last lines, and one more thread is memory for nothing).
 *
 * stderr is synchronous on Linux when it is a pipe or a file, so one write per line costs a system call on the
 * request path: at 2,000 requests/s that was a tenth of serve's CPU. pino writes each line to the destination below,
 * which gathers debug and info lines and writes them once per event-loop turn; a warning or an error goes out at once
 * with whatever came before it (so lines stay in order), and anything pending is written when the process exits.
 */
export function createNodeLogger(opts: {
  level: Level;
  format?: LogFormat;
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}): Logger {
  const out = opts.stream ?? process.stderr;
  const tty = out.isTTY === true;
  const pretty = opts.format === 'pretty' || ((opts.format ?? 'auto') === 'auto' && tty);
  const format = pretty
    ? prettyFactory({ colorize: tty, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l', singleLine: true })
    : (line: string) => line;
  let batch = '';
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (batch === '') return;
    const text = batch;
    batch = '';
    out.write(text);
  };
  process.on('exit', flush);
  const destination = {
    write(line: string) {
      batch += format(line);
      if (batch.length >= MAX_BATCH) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
  };
  const log = pino(
    {
      level: opts.level,
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  const write = (level: Level) => (msg: string, fields?: LogFields) => {
    log[level](fields ?? {}, msg);
    if (level === 'warn' || level === 'error') flush();
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}
