import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { hasScope, tokensRequired, type Scope, type TokenRecord } from '../../core/auth.js';
import type { TokenGate } from '../auth.js';
import type { AppDeps } from '../deps.js';
import { Page, Problem } from './layout.js';

/**
 * Who may see and act on the dashboard: the native API's rule (http/auth.ts) with the token carried differently. A
 * browser cannot add a bearer header to a link or a form, so the token is given once on a sign-in form and kept in an
 * HttpOnly, SameSite=Strict cookie (`Secure` over HTTPS): page scripts cannot read it and other sites' pages cannot
 * make the browser send it. Reading needs `read`, rolling back and unpinning `admin`. A bearer header works too
 * (scripts, curl). When no token is required (as for the API) the dashboard is open.
 *
 * Forgery: every dashboard POST, open or not, must come from a page of this server. Browsers send `Origin` with every
 * POST (and `Sec-Fetch-Site`); either naming another site is refused. A request with neither is not a browser's, so
 * not a forgery riding someone's cookie. SameSite=Strict alone would leave the open (tokenless, loopback) dashboard
 * exposed to any page the operator visits.
 */
export const COOKIE = 'pxecache_token';
export const LOGIN = '/dashboard/login';

export interface Viewer {
  /** The token's id; null when the dashboard is open. */
  readonly token: string | null;
  /** Came with the cookie (so may sign out). */
  readonly cookie: boolean;
  readonly admin: boolean;
}

declare module 'hono' {
  interface ContextVariableMap {
    viewer: Viewer;
  }
}

export function dashboardGuard(deps: AppDeps, gate: TokenGate): MiddlewareHandler {
  return async (c, next) => {
    const read = c.req.method === 'GET' || c.req.method === 'HEAD';
    if (!read && !sameOrigin(c)) {
      deps.logger.warn('dashboard request refused', { ...request(c, deps), reason: 'cross-site' });
      return c.html(
        <Problem title="Refused" message="this form was sent from another site; use the dashboard's own pages" />,
        403,
      );
    }
    if (c.req.path === LOGIN || c.req.path === '/dashboard/logout') return next();
    if (!tokensRequired(deps.auth)) {
      c.set('viewer', { token: null, cookie: false, admin: true });
      return next();
    }
    const bearer = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(c.req.header('authorization') ?? '')?.[1];
    const cookie = bearer === undefined ? getCookie(c, COOKIE) : undefined;
    const presented = bearer ?? cookie;
    if (presented === undefined) {
      if (read) return c.redirect(`${LOGIN}?next=${encodeURIComponent(c.req.path)}`, 303);
      return c.html(<Problem title="Sign in first" message="this action needs an admin token" back={LOGIN} />, 401);
    }
    const scope: Scope = read ? 'read' : 'admin';
    const outcome = await checkToken(deps, gate, c, presented, scope);
    if ('refused' in outcome) {
      if (cookie !== undefined && outcome.refused === 401) deleteCookie(c, COOKIE, { path: '/' });
      deps.logger.warn('dashboard request refused', { ...request(c, deps), status: outcome.refused });
      return c.html(<Problem title="Not allowed" message={outcome.message} back={LOGIN} />, outcome.refused);
    }
    c.set('viewer', { token: outcome.id, cookie: cookie !== undefined, admin: hasScope(outcome, 'admin') });
    await next();
    deps.logger.info('dashboard request', { token: outcome.id, ...request(c, deps), status: c.res.status });
  };
}

/** The token's record, or why it is refused (rate limit first, as the API does: see auth-failures.ts). */
async function checkToken(
  deps: AppDeps,
  gate: TokenGate,
  c: Context,
  presented: string,
  scope: Scope,
): Promise<TokenRecord | { readonly refused: 401 | 403 | 429; readonly message: string }> {
  const remote = deps.remoteAddress(c) ?? 'unknown';
  const wait = gate.failures.retryAfter(remote);
  if (wait > 0) return { refused: 429, message: `too many failed attempts from ${remote}: retry after ${wait} s` };
  const token = await gate.verify(presented);
  if (!token) {
    gate.failures.fail(remote);
    return { refused: 401, message: 'the token is not valid (unknown, revoked or mistyped)' };
  }
  if (hasScope(token, scope)) return token;
  return { refused: 403, message: `token "${token.id}" lacks scope "${scope}" (it has: ${token.scopes.join(', ')})` };
}

const request = (c: Context, deps: AppDeps) => ({
  method: c.req.method,
  path: c.req.path,
  remote: deps.remoteAddress(c),
});

/** Origin (or, without it, Sec-Fetch-Site) says the request comes from this server's own pages. */
function sameOrigin(c: Context): boolean {
  const origin = c.req.header('origin');
  if (origin !== undefined) {
    // Hosts, not origins: behind a TLS-terminating proxy the browser's https origin reaches us as http. The request
    // URL's host is the Host header on Node, the real one on Workers and Lambda.
    try {
      return new URL(origin).host === new URL(c.req.url).host;
    } catch {
      return false; // "null" (sandboxed frames, some redirects) and garbage
    }
  }
  const site = c.req.header('sec-fetch-site');
  return site === undefined || site === 'same-origin' || site === 'none';
}

/** GET/POST /dashboard/login and POST /dashboard/logout. */
export function sessionRoutes(deps: AppDeps, gate: TokenGate) {
  return {
    form(c: Context) {
      return c.html(<Login next={localPath(c.req.query('next'))} open={!tokensRequired(deps.auth)} />);
    },
    async login(c: Context) {
      const form = await c.req.parseBody();
      const next = localPath(typeof form['next'] === 'string' ? form['next'] : undefined);
      const token = typeof form['token'] === 'string' ? form['token'].trim() : '';
      if (token === '') return c.html(<Login next={next} error="token: is required" />, 400);
      const outcome = await checkToken(deps, gate, c, token, 'read');
      if ('refused' in outcome) {
        deps.logger.warn('dashboard sign-in refused', { ...request(c, deps), status: outcome.refused });
        return c.html(<Login next={next} error={outcome.message} />, outcome.refused);
      }
      const secure = new URL(c.req.url).protocol === 'https:';
      setCookie(c, COOKIE, token, { path: '/', httpOnly: true, sameSite: 'Strict', secure });
      deps.logger.info('dashboard sign-in', { token: outcome.id, remote: deps.remoteAddress(c) });
      return c.redirect(next, 303);
    },
    logout(c: Context) {
      deleteCookie(c, COOKIE, { path: '/' });
      return c.redirect(LOGIN, 303);
    },
  };
}

/** Only a path on this server (`/x`, not `//evil.example` or `https://...`): no open redirect after sign-in. */
function localPath(next: string | undefined): string {
  return next !== undefined && /^\/(?![/\\])/.test(next) ? next : '/';
}

function Login(props: { readonly next: string; readonly error?: string; readonly open?: boolean }) {
  return (
    <Page title="Sign in">
      <h1>Sign in</h1>
      {props.open ? <p class="notice">This server requires no token: the dashboard is open.</p> : null}
      {props.error ? <p class="notice bad">{props.error}</p> : null}
      <form method="post" action={LOGIN}>
        <input type="hidden" name="next" value={props.next} />
        <p>
          <label>
            Token (scope read; admin to roll back){' '}
            <input type="password" name="token" autocomplete="current-password" required size={50} />
          </label>
        </p>
        <button type="submit">Sign in</button>
      </form>
    </Page>
  );
}
