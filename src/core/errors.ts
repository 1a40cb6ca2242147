/**
 * One error family with stable string codes (undici's pattern). HTTP status and CLI exit codes are mapped from these
 * in exactly one place each (`http/errors.ts`, `cli/exit.ts`).
 */
import { redactUrl } from './redact.js';
import type { ErrorInfo } from './records.js';

export class PxeError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bad input from a caller: names the offending field. Maps to 400. */
export class InputError extends PxeError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('invalid-input', `${field}: ${message}`);
    this.field = field;
  }
}

/** The request is valid on its own but collides with what is published. Maps to 409. */
export class ConflictError extends PxeError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('conflict', `${field}: ${message}`);
    this.field = field;
  }
}

/** Maps to 404. `code` says what is missing when a client must tell cases apart (`unknown-site`). */
export class NotFoundError extends PxeError {
  constructor(message: string, code = 'not-found') {
    super(code, message);
  }
}

/** Upstream answered with a status we cannot publish (4xx/5xx, too many redirects, ...). */
export class UpstreamError extends PxeError {
  readonly url: string;
  readonly status: number | undefined;
  constructor(code: string, url: string, message: string, options?: { status?: number; cause?: unknown }) {
    const shown = redactUrl(url);
    super(code, `[upstream] GET ${shown}: ${message}`, options);
    this.url = shown;
    this.status = options?.status;
  }
}

export class IntegrityError extends PxeError {
  readonly expected: string;
  readonly actual: string;
  constructor(what: string, expected: string, actual: string) {
    super('integrity', `${what}: expected ${expected}, got ${actual}`);
    this.expected = expected;
    this.actual = actual;
  }
}

export class StorageError extends PxeError {
  readonly driver: string;
  readonly key: string;
  constructor(driver: string, op: string, key: string, cause: unknown) {
    super('storage', `[store:${driver}] ${op} ${key}: ${describe(cause)}`, { cause });
    this.driver = driver;
    this.key = key;
  }
}

/** A create-only or compare-and-swap write lost its race. Drivers throw it; callers decide what losing means. */
export class PreconditionFailedError extends PxeError {
  readonly key: string;
  constructor(driver: string, key: string) {
    super('precondition-failed', `[store:${driver}] conditional write of ${key} lost: object changed`);
    this.key = key;
  }
}

export class ConfigError extends PxeError {
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super('config', `invalid configuration:\n  - ${issues.join('\n  - ')}`);
    this.issues = issues;
  }
}

export function describe(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' && !cause.message.includes(code) ? `${code} ${cause.message}` : cause.message;
  }
  return String(cause);
}

/** The `{code, message}` a status carries for an error: a PxeError's own code, else `internal`. */
export function errorInfo(err: unknown): ErrorInfo {
  return err instanceof PxeError
    ? { code: err.code, message: err.message }
    : { code: 'internal', message: describe(err) };
}
