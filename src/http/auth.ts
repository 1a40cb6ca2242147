import type { Context, Hono, MiddlewareHandler } from 'hono';
import { createFailureLimiter, type FailureLimiter } from '../core/auth-failures.js';
import {
  createTokenVerifier,
  hasScope,
  isLoopback,
  isTrustedClient,
  tokensRequired,
  type Scope,
  type TokenRecord,
} from '../core/auth.js';
import { dashboardGuard } from './dashboard/session.js';
import type { AppDeps } from './deps.js';
import { requestIdOf } from './request-id.js';

/**
 * Who may call what. Open to anyone: `/healthz`, `/features`, `/version` (load-balancer checks and Foreman's
 * "Refresh features"), also per site, and the API document `/api/v1/openapi.json` (it holds no secrets). The native API (`/api/v1/*`): a bearer token with the route's scope whenever
 * tokens are required, on every listener; a client certificate grants no scope (it names a Foreman, which never
 * calls the native API, and carries no scopes to check). The smart-proxy routes: Foreman sends no bearer token but
 * authenticates with a client certificate; over HTTPS a verified certificate whose CN is in `trustedHosts` is let in
 * from any address and any other is refused (smart-proxy's trusted_hosts). Over plain HTTP there is no certificate:
 * loopback peers only (a local Foreman, or a TLS-terminating proxy on the same host) unless `--open-smart-proxy`.
 *
 * Guards are attached to the same route patterns the routes use, so Hono's router decides for both on the same
 * (decoded) path: no spelling of a path reaches a route without passing its guard.
 */
export function installAuth(app: Hono, deps: AppDeps): TokenGate {
  const gate = createTokenGate(deps);
  app.use('/api/v1/*', nativeApiGuard(deps, gate));
  // The dashboard (http/dashboard/): the same tokens and scopes, carried by a cookie a browser can send.
  const pages = dashboardGuard(deps, gate);
  for (const path of ['/', '/files/*', '/dashboard/*']) app.use(path, pages);
  const proxyGuard = smartProxyGuard(deps);
  // Every smart-proxy route but /features and /version lives under these; a new one elsewhere must be added here.
  for (const base of ['', '/sites/:site']) {
    app.use(`${base}/tftp/*`, proxyGuard);
    app.use(`${base}/v2/features`, proxyGuard);
  }
  return gate;
}

/**
 * The scope a native API request needs; null: none (the API document, which says how to get a token). Every GET is
 * a read (catalog, statuses, blobs, site configs, change feeds: what agents consume), and so is an agent's site
 * report (agents hold read tokens); `POST /fetch` starts downloads; anything else, and everything under `/admin`, is
 * admin, so a new route fails closed until it is given a narrower scope here.
 */
export function scopeFor(method: string, path: string): Scope | null {
  if ((method === 'GET' || method === 'HEAD') && path === OPEN_DOCUMENT) return null;
  if (/^\/api\/v1\/admin(\/|$)/.test(path)) return 'admin';
  if (method === 'POST' && path === '/api/v1/fetch') return 'fetch';
  // Agents hold read tokens and report what their site holds: a report changes no file, only what operators see.
  if (method === 'POST' && /^\/api\/v1\/sites\/[^/]+\/report$/.test(path)) return 'read';
  if (method === 'GET' || method === 'HEAD') return 'read';
  return 'admin';
}

const OPEN_DOCUMENT = '/api/v1/openapi.json';
const HOW = 'send "Authorization: Bearer <token>" (an operator makes tokens with "pxecache token")';
const FAILURE_WINDOW_MS = 60_000;

interface Denial {
  readonly status: 401 | 403;
  readonly message: string;
  /** The WWW-Authenticate challenge (RFC 6750 section 3). */
  readonly challenge: string;
  readonly tokenId?: string;
}

/** Token checks and failed-attempt counting shared by the native API and the dashboard (one limit for both). */
export interface TokenGate {
  verify(token: string): Promise<TokenRecord | null>;
  readonly failures: FailureLimiter;
}

function createTokenGate(deps: AppDeps): TokenGate {
  return {
    verify: createTokenVerifier(deps.auth.tokens, deps.hasher),
    failures:
      deps.authFailures ??
      createFailureLimiter({ limit: deps.auth.failureLimit, windowMs: FAILURE_WINDOW_MS, clock: deps.clock }),
  };
}

function nativeApiGuard(deps: AppDeps, { verify, failures }: TokenGate): MiddlewareHandler {
  const invalid = (code: string, message: string): Denial => ({
    status: 401,
    message,
    challenge: `Bearer realm="pxecache", error="${code}"`,
  });

  async function check(c: Context, scope: Scope): Promise<Denial | TokenRecord> {
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
    const token = await verify(bearer);
    if (!token) return invalid('invalid_token', 'the bearer token is not valid (unknown, revoked or mistyped)');
    if (hasScope(token, scope)) return token;
    return {
      status: 403,
      message: `token "${token.id}" lacks scope "${scope}" needed for ${route} (it has: ${token.scopes.join(', ')})`,
      challenge: `Bearer realm="pxecache", error="insufficient_scope", scope="${scope}"`,
      tokenId: token.id,
    };
  }

  return async (c, next) => {
    const scope = scopeFor(c.req.method, c.req.path);
    if (scope === null || !tokensRequired(deps.auth)) return next();
    const remote = deps.remoteAddress(c);
    const request = { method: c.req.method, path: c.req.path, remote, requestId: requestIdOf(c) };
    const retryAfter = failures.retryAfter(remote ?? 'unknown');
    if (retryAfter > 0) {
      deps.logger.warn('api request refused', { ...request, status: 429 });
      c.header('Retry-After', String(retryAfter));
      const message =
        `too many failed authentication attempts from ${remote ?? 'this address'}: ` +
        `retry after ${retryAfter} s (at most ${deps.auth.failureLimit} per minute)`;
      return c.json({ error: { code: 'rate-limited', message } }, 429);
    }
    const outcome = await check(c, scope);
    if ('id' in outcome) {
      await next();
      // The audit trail: who (token id, never the token), what, with which outcome, from where.
      deps.logger.info('api request', { token: outcome.id, ...request, status: c.res.status });
      return;
    }
    // A valid token without the scope is not a guess: only 401s count towards the limit.
    if (outcome.status === 401) failures.fail(remote ?? 'unknown');
    deps.logger.warn('api request refused', {
      ...request,
      status: outcome.status,
      ...(outcome.tokenId ? { token: outcome.tokenId } : {}),
    });
    c.header('WWW-Authenticate', outcome.challenge);
    const code = outcome.status === 401 ? 'unauthorized' : 'forbidden';
    return c.json({ error: { code, message: outcome.message } }, outcome.status);
  };
}

function smartProxyGuard(deps: AppDeps): MiddlewareHandler {
  return async (c, next) => {
    const remote = deps.remoteAddress(c);
    const request = { method: c.req.method, path: c.req.path, remote, requestId: requestIdOf(c) };
    const certificate = deps.clientCertificate(c);
    // Plain text bodies, as smart-proxy answers: Foreman shows the body of a failed call to the user.
    if (certificate) {
      // The runtime already verified the chain against --ssl-ca-file; the CN decides, from any address.
      const cn = certificate.cn?.toLowerCase() ?? null;
      if (isTrustedClient(deps.auth, cn)) {
        await next();
        deps.logger.info('smart-proxy request', { client: cn, ...request, status: c.res.status });
        return;
      }
      deps.logger.warn('smart-proxy request refused', { ...request, client: cn });
      return c.text(
        cn === null
          ? 'could not read CN from the client certificate'
          : `Untrusted client ${cn} attempted to access ${c.req.path}. Check --trusted-hosts`,
        403,
      );
    }
    if (deps.auth.openSmartProxy) return next();
    if (remote !== undefined && isLoopback(remote)) return next();
    deps.logger.warn('smart-proxy request refused', request);
    return c.text(
      'smart-proxy routes over plain HTTP answer loopback clients only: connect over HTTPS (--https-port) with a ' +
        'client certificate whose CN is in --trusted-hosts, or start with --open-smart-proxy to accept them from ' +
        `the network (request from ${remote ?? 'an unknown address'})`,
      403,
    );
  };
}
