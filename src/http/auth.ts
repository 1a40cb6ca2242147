import type { Context, Hono, MiddlewareHandler } from 'hono';
import { createTokenVerifier, hasScope, isLoopback, type Scope } from '../core/auth.js';
import type { AppDeps } from './deps.js';

/**
 * Who may call what. Open to anyone: `/healthz`, `/features`, `/version` (load-balancer checks and Foreman's
 * "Refresh features"), also per site. The native API (`/api/v1/*`): a bearer token with the route's scope whenever
 * `auth.requireToken`. The smart-proxy routes: Foreman sends no bearer token but authenticates with a client
 * certificate, which pxecache does not verify yet; until it does, they answer loopback peers only (a local Foreman,
 * or a TLS-terminating proxy on the same host) unless the operator opened them with `--open-smart-proxy`.
 *
 * Guards are attached to the same route patterns the routes use, so Hono's router decides for both on the same
 * (decoded) path: no spelling of a path reaches a route without passing its guard.
 */
export function installAuth(app: Hono, deps: AppDeps): void {
  app.use('/api/v1/*', nativeApiGuard(deps));
  const proxyGuard = smartProxyGuard(deps);
  // Every smart-proxy route but /features and /version lives under these; a new one elsewhere must be added here.
  for (const base of ['', '/sites/:site']) {
    app.use(`${base}/tftp/*`, proxyGuard);
    app.use(`${base}/v2/features`, proxyGuard);
  }
}

/**
 * The scope a native API request needs. Every GET is a read (catalog, statuses, blobs, site configs, change feeds:
 * what agents consume); `POST /fetch` starts downloads; anything else, and everything under `/admin`, is admin, so
 * a new route fails closed until it is given a narrower scope here.
 */
export function scopeFor(method: string, path: string): Scope {
  if (/^\/api\/v1\/admin(\/|$)/.test(path)) return 'admin';
  if (method === 'POST' && path === '/api/v1/fetch') return 'fetch';
  if (method === 'GET' || method === 'HEAD') return 'read';
  return 'admin';
}

const HOW = 'send "Authorization: Bearer <token>" (an operator makes tokens with "pxecache token")';

interface Denial {
  readonly status: 401 | 403;
  readonly message: string;
  /** The WWW-Authenticate challenge (RFC 6750 section 3). */
  readonly challenge: string;
  readonly tokenId?: string;
}

function nativeApiGuard(deps: AppDeps): MiddlewareHandler {
  const verify = createTokenVerifier(deps.auth.tokens, deps.hasher);
  const invalid = (code: string, message: string): Denial => ({
    status: 401,
    message,
    challenge: `Bearer realm="pxecache", error="${code}"`,
  });

  function check(c: Context): Denial | null {
    const scope = scopeFor(c.req.method, c.req.path);
    const route = `${c.req.method} ${c.req.path}`;
    const header = c.req.header('authorization');
    if (header === undefined || header.trim() === '')
      return {
        status: 401,
        message: `${route} needs a bearer token with scope "${scope}": ${HOW}`,
        challenge: 'Bearer realm="pxecache"',
      };
    const bearer = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1];
    if (bearer === undefined)
      return invalid('invalid_request', `the Authorization header is not a bearer token: ${HOW}`);
    const token = verify(bearer);
    if (!token) return invalid('invalid_token', 'the bearer token is not valid (unknown, revoked or mistyped)');
    if (hasScope(token, scope)) return null;
    return {
      status: 403,
      message: `token "${token.id}" lacks scope "${scope}" needed for ${route} (it has: ${token.scopes.join(', ')})`,
      challenge: `Bearer realm="pxecache", error="insufficient_scope", scope="${scope}"`,
      tokenId: token.id,
    };
  }

  return async (c, next) => {
    if (!deps.auth.requireToken) return next();
    const denial = check(c);
    if (!denial) return next();
    deps.logger.warn('api request refused', {
      method: c.req.method,
      path: c.req.path,
      status: denial.status,
      remote: deps.remoteAddress(c),
      ...(denial.tokenId ? { token: denial.tokenId } : {}),
    });
    c.header('WWW-Authenticate', denial.challenge);
    const code = denial.status === 401 ? 'unauthorized' : 'forbidden';
    return c.json({ error: { code, message: denial.message } }, denial.status);
  };
}

function smartProxyGuard(deps: AppDeps): MiddlewareHandler {
  return async (c, next) => {
    if (deps.auth.openSmartProxy) return next();
    const remote = deps.remoteAddress(c);
    if (remote !== undefined && isLoopback(remote)) return next();
    deps.logger.warn('smart-proxy request refused', { method: c.req.method, path: c.req.path, remote });
    // Plain text, as smart-proxy answers: Foreman shows the body of a failed call to the user.
    return c.text(
      'smart-proxy routes are loopback-only until client-certificate authentication is configured; start with ' +
        `--open-smart-proxy to accept them from the network (request from ${remote ?? 'an unknown address'})`,
      403,
    );
  };
}
