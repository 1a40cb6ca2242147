import { ConfigError } from '../../src/core/errors.js';

/** The issues of the ConfigError `fn` throws; anything else (or nothing thrown) fails the test. */
export function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  throw new Error('expected a ConfigError');
}
