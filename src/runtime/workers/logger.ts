import type { LogFields, Logger } from '../../core/ports.js';

type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** JSON lines through `console`, which Workers Logs (and `wrangler tail`) collect with their level. */
export function createWorkersLogger(level: Level): Logger {
  const write = (at: Level) => (msg: string, fields?: LogFields) => {
    if (ORDER[at] < ORDER[level]) return;
    console[at === 'debug' ? 'log' : at](JSON.stringify({ time: new Date().toISOString(), level: at, msg, ...fields }));
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}
