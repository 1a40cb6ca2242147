import type { Context, MiddlewareHandler } from 'hono';

/**
 * Every request has an id: the caller's `X-Request-Id` when it is short and made of safe characters (a proxy or
 * Foreman's own id, so one id follows a request across systems), otherwise a new one. It is answered in the response
 * header, carried on the access and error log lines, and handed to the fetch the request starts, whose log lines
 * carry it up to the publication. An unusable header is replaced, not refused: a tracing header must never fail a
 * boot-file request, and a replaced id cannot inject anything into a log line.
 */
const SAFE_ID = /^[A-Za-z0-9._:-]{1,64}$/;

const ids = new WeakMap<Request, string>();

export function requestIds(): MiddlewareHandler {
  return async (c, next) => {
    const given = c.req.header('x-request-id');
    const id = given !== undefined && SAFE_ID.test(given) ? given : crypto.randomUUID();
    ids.set(c.req.raw, id);
    c.header('X-Request-Id', id);
    await next();
  };
}

/** The id of this request (`requestIds` runs first on every route). */
export function requestIdOf(c: Context): string {
  return ids.get(c.req.raw) ?? 'none';
}
