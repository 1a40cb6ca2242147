import type { Context } from 'hono';
import { InputError } from '../core/errors.js';

export type Params = Record<string, string | undefined>;

/**
 * smart-proxy (Sinatra) merges query, form and JSON parameters; Foreman sends form-encoded bodies. Body values win
 * over query values, as in Sinatra.
 */
export async function readParams(c: Context): Promise<Params> {
  const out: Params = { ...c.req.query() };
  const type = (c.req.header('content-type') ?? '').toLowerCase();
  if (type.startsWith('application/json')) {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new InputError('body', 'is not valid JSON');
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      throw new InputError('body', 'must be a JSON object');
    for (const [k, v] of Object.entries(body))
      if (typeof v === 'string') out[k] = v;
      else if (v !== null && v !== undefined) throw new InputError(k, 'must be a string');
  } else if (type.startsWith('application/x-www-form-urlencoded')) {
    // Foreman's form: decoded directly (the generic FormData parser costs several times more per request). From the
    // bytes: workerd warns on every `.text()` of a body whose type is not text.
    const form = new TextDecoder().decode(await c.req.arrayBuffer());
    for (const [k, v] of new URLSearchParams(form)) out[k] = v;
  } else if (type.startsWith('multipart/form-data')) {
    let body: Record<string, unknown>;
    try {
      body = await c.req.parseBody();
    } catch {
      // Regression: a multipart body without a (matching) boundary made the Web FormData parser throw: a 500.
      throw new InputError('body', `is not valid ${type.split(';', 1)[0]}`);
    }
    for (const [k, v] of Object.entries(body)) if (typeof v === 'string') out[k] = v;
  }
  return out;
}

export function required(params: Params, field: string): string {
  const value = params[field];
  if (value === undefined || value === '') throw new InputError(field, 'is required');
  return value;
}
