import type { LogFields, Logger } from '../../core/ports.js';

type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** JSON lines on stderr (stdout stays free for command output such as `pxecache fetch`'s status). */
export function createNodeLogger(opts: { level: Level; stream?: NodeJS.WritableStream }): Logger {
  const out = opts.stream ?? process.stderr;
  const min = ORDER[opts.level];
  const write = (level: Level) => (msg: string, fields?: LogFields) => {
    if (ORDER[level] < min) return;
    out.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}
