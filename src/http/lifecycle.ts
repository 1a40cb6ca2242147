import { Hono } from 'hono';
import { rollback, unpin, type LifecycleResult } from '../core/rollback.js';
import { readStatus } from '../core/status.js';
import type { AppDeps } from './deps.js';
import { readParams } from './params.js';
import { parseInput, rollbackBody, unpinBody, type LifecycleAnswer } from './schemas.js';

/**
 * `POST /api/v1/rollback` `{target, to?}` and `POST /api/v1/unpin` `{target}` (core/rollback.ts): admin scope, as
 * every native POST but /fetch (http/auth.ts). They answer each name's move and its status afterwards; bad input is a
 * 400 naming the field, an unknown target a 404, a name without an older kept version a 409, and nothing changes.
 */
export function lifecycleRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const answer = async (target: string, results: readonly LifecycleResult[]): Promise<LifecycleAnswer> => ({
    target,
    files: await Promise.all(
      results.map(async ({ name, outcome, from }) => ({
        name,
        outcome,
        from,
        status: await readStatus(deps.store, deps.clock, name),
      })),
    ),
  });

  app.post('/rollback', async (c) => {
    const { target, to } = parseInput(rollbackBody, await readParams(c));
    const results = await rollback(deps.store, deps.clock, target, to === undefined ? {} : { to });
    return c.json(await answer(target, results));
  });

  app.post('/unpin', async (c) => {
    const { target } = parseInput(unpinBody, await readParams(c));
    const keep = deps.keepVersions === undefined ? {} : { keep: deps.keepVersions };
    return c.json(await answer(target, await unpin(deps.store, deps.clock, target, keep)));
  });

  return app;
}
