import { ConfigError, InputError, PxeError } from '../core/errors.js';

/** The one place errors become exit codes: 2 for usage and configuration, 1 for everything that failed at work. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export function exitCodeOf(err: unknown): number {
  if (err instanceof ConfigError || err instanceof InputError) return EXIT_USAGE;
  return EXIT_FAILED;
}

export function messageOf(err: unknown): string {
  if (err instanceof ConfigError) return err.message;
  if (err instanceof PxeError) return `error: ${err.message}`;
  return `error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
}
