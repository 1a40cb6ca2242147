import { Hono, type Context } from 'hono';
import { InputError } from '../../core/errors.js';
import { assertStorable, validateName } from '../../core/naming.js';
import { rollback, unpin } from '../../core/rollback.js';
import { nameFromPath } from '../api-v1.js';
import type { TokenGate } from '../auth.js';
import type { AppDeps } from '../deps.js';
import { statusOf } from '../errors.js';
import { readMatrix, readNameDetail } from './data.js';
import { namePage } from './format.js';
import { Problem } from './layout.js';
import { MatrixPage } from './matrix.js';
import { NamePage } from './name-page.js';
import { sessionRoutes, type Viewer } from './session.js';

/**
 * The dashboard (docs/dashboard.md): server-rendered HTML, no client build, no script needed. Guarded by
 * http/auth.ts (dashboard/session.tsx); the actions call the same core functions as `POST /api/v1/rollback` and
 * `/unpin`, then redirect back to the name's page (POST-redirect-GET, so a reload never repeats them).
 */
export function dashboardRoutes(deps: AppDeps, gate: TokenGate): Hono {
  const app = new Hono();
  const session = sessionRoutes(deps, gate);
  const viewer = (c: Context): Viewer => c.get('viewer');
  app.onError((err, c) => {
    if (statusOf(err) === 500) throw err; // the app's handler logs it and answers without the stack
    return c.html(<Problem title="Refused" message={err.message} />, statusOf(err));
  });

  app.get('/', async (c) => c.html(<MatrixPage matrix={await readMatrix(deps)} signedIn={viewer(c).cookie} />));

  app.get('/files/*', async (c) => {
    const name = checkedName(deps, nameFromPath(c.req.path, '/files/'));
    const detail = await readNameDetail(deps, name);
    if (!detail) return c.html(<Problem title="Not found" message={`no file named "${name}"`} />, 404);
    const { admin, cookie } = viewer(c);
    // Fixed texts: a link must not be able to make this page say anything it likes.
    const notice = NOTICES[c.req.query('done') ?? ''];
    return c.html(<NamePage detail={detail} admin={admin} signedIn={cookie} {...(notice ? { notice } : {})} />);
  });

  app.post('/dashboard/rollback', async (c) => {
    const form = await c.req.parseBody();
    const name = checkedName(deps, field(form, 'name'));
    const to = field(form, 'to');
    const [result] = await rollback(deps.store, deps.clock, name, { to });
    deps.logger.info('dashboard rollback', { name, from: result?.from, to, token: viewer(c).token });
    return c.redirect(`${namePage(name)}?done=rolled-back`, 303);
  });

  app.post('/dashboard/unpin', async (c) => {
    const name = checkedName(deps, field(await c.req.parseBody(), 'name'));
    const keep = deps.keepVersions === undefined ? {} : { keep: deps.keepVersions };
    const [result] = await unpin(deps.store, deps.clock, name, keep);
    deps.logger.info('dashboard unpin', { name, outcome: result?.outcome, token: viewer(c).token });
    return c.redirect(`${namePage(name)}?done=${result?.outcome ?? 'not-pinned'}`, 303);
  });

  app.get('/dashboard/login', session.form);
  app.post('/dashboard/login', session.login);
  app.post('/dashboard/logout', session.logout);
  return app;
}

const NOTICES: Readonly<Record<string, string>> = {
  'rolled-back': 'Rolled back and pinned: revalidations hold newer upstream bytes until you unpin.',
  unpinned: 'Unpinned: the version stays until upstream serves newer bytes.',
  'published-held': 'Unpinned: the newer upstream version held while pinned is now current.',
  'not-pinned': 'The name was not pinned: nothing changed.',
};

/** A published name's form: only names, never a prefix (the page acts on the one name it shows). */
function checkedName(deps: AppDeps, name: string): string {
  validateName(name, 'name');
  assertStorable(name, 'name', deps.store.maxKeyBytes);
  return name;
}

function field(form: Record<string, unknown>, key: string): string {
  const value = form[key];
  if (typeof value !== 'string' || value === '') throw new InputError(key, 'is required');
  return value;
}
