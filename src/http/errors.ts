import type { Context } from 'hono';
import { ConflictError, InputError, NotFoundError, PxeError } from '../core/errors.js';
import type { Logger } from '../core/ports.js';
import { requestIdOf } from './request-id.js';

/** The one place errors become HTTP statuses. */
export function statusOf(err: unknown): 400 | 404 | 409 | 500 | 503 {
  if (err instanceof InputError) return 400;
  if (err instanceof ConflictError) return 409;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof PxeError && err.code === 'storage') return 503;
  return 500;
}

/** Status of a failed fetch for `POST /api/v1/fetch?wait` (DESIGN.md: 502, 504 or 422 with the status body). */
export function failedFetchStatus(code: string | undefined): 422 | 502 | 504 {
  if (code === 'timeout') return 504;
  if (code === 'integrity') return 422;
  return 502;
}

/**
 * Foreman shows smart-proxy's plain-text error bodies to the user; the native API answers JSON. Internal errors are
 * logged with their stack and answered without it.
 */
export function handleError(logger: Logger) {
  return (err: Error, c: Context) => {
    const status = statusOf(err);
    const message = status === 500 ? 'internal error; see the pxecache log' : err.message;
    if (status >= 500)
      logger.error('request failed', {
        path: c.req.path,
        requestId: requestIdOf(c),
        err: err.stack ?? String(err),
      });
    if (c.req.path.startsWith('/api/')) {
      const field = err instanceof InputError || err instanceof ConflictError ? err.field : undefined;
      const code = err instanceof PxeError ? err.code : 'internal';
      return c.json({ error: { code, message, ...(field ? { field } : {}) } }, status);
    }
    return c.text(message, status);
  };
}
