import { z } from 'zod';
import type { Scope } from '../core/auth.js';
import {
  apiRegistry,
  catalog,
  changes,
  configCatalog,
  errorBody,
  fetchBody,
  fileStatus,
  lifecycleAnswer,
  MAX_WAIT_S,
  requestIds,
  rollbackBody,
  sha256Param,
  siteParam,
  sinceParam,
  siteList,
  siteReport,
  unpinBody,
  waitParam,
} from './schemas.js';

/**
 * The OpenAPI 3.1 document of the native API (`GET /api/v1/openapi.json`), built from the zod schemas the routes
 * validate with (schemas.ts). `ROUTES` lists every native route with the Hono pattern it is registered under: a test
 * walks the app's routes and fails on one missing here. Generated once per process; it holds no secrets.
 */

type Body = z.ZodType | 'binary' | 'none';
interface Answer {
  readonly description: string;
  readonly body: Body;
  readonly headers?: readonly string[];
}
export interface RouteDoc {
  readonly method: 'get' | 'post';
  /** The path as the document writes it. */
  readonly path: string;
  /** The pattern the route is registered under in the Hono app (`app.routes`). */
  readonly route: string;
  /** Token scope it needs when tokens are required (http/auth.ts); null: open. */
  readonly scope: Scope | null;
  readonly summary: string;
  readonly parameters?: readonly object[];
  readonly requestBody?: z.ZodType;
  readonly responses: Readonly<Record<string, Answer>>;
}

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const json = (schema: z.ZodType, io: 'input' | 'output') => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io });
  return rest;
};
const query = (name: string, schema: z.ZodType, description: string) => ({
  name,
  in: 'query',
  required: false,
  description,
  schema: json(schema, 'input'),
});
const path = (name: string, schema: z.ZodType, description: string) => ({
  name,
  in: 'path',
  required: true,
  description,
  schema: json(schema, 'input'),
});

const SINCE = query('since', sinceParam, 'A cursor from an earlier answer: answer only what changed after it.');
const WAIT = query(
  'wait',
  waitParam,
  `Seconds to hold the request open for news (at most ${MAX_WAIT_S}; fractions allowed). Absent: answer at once.`,
);
const IF_NONE_MATCH = {
  name: 'If-None-Match',
  in: 'header',
  required: false,
  description: 'An ETag from an earlier answer: 304 while nothing changed (after waiting `wait` seconds).',
  schema: { type: 'string' },
};
const SITE = path('site', siteParam, 'A site name from --sites.');

const error = (description: string): Answer => ({ description, body: errorBody });
const NOT_MODIFIED: Answer = { description: 'Nothing changed (or nothing within `wait`).', body: 'none', headers: ['ETag'] }; // prettier-ignore
const BAD_INPUT = error('Bad input; `error.field` names it and the message says why.');
const TOO_LARGE = error('The body is larger than 1 MiB, the most any route takes.');
const failed = (why: string): Answer => ({ description: `The fetch failed (${why}); the body is its status.`, body: fileStatus }); // prettier-ignore

export const ROUTES: readonly RouteDoc[] = [
  {
    method: 'get',
    path: '/api/v1/changes',
    route: '/api/v1/changes',
    scope: 'read',
    summary: 'The change feed agents follow: what changed after `since`, or everything (`complete: true`).',
    parameters: [SINCE, WAIT, query('site', siteParam, "Include this site's boot configs."), IF_NONE_MATCH],
    responses: {
      '200': { description: 'Changes after the cursor, or everything.', body: changes, headers: ['ETag'] },
      '304': NOT_MODIFIED,
      '400': BAD_INPUT,
      '404': error('No such site (`error.code` is `unknown-site`).'),
    },
  },
  {
    method: 'get',
    path: '/api/v1/files',
    route: '/api/v1/files',
    scope: 'read',
    summary: 'The boot-file catalog: every published name, or with `since` the names changed after it.',
    parameters: [SINCE, WAIT, IF_NONE_MATCH],
    responses: {
      '200': { description: 'The catalog.', body: catalog, headers: ['ETag'] },
      '304': NOT_MODIFIED,
      '400': BAD_INPUT,
    },
  },
  {
    method: 'get',
    path: '/api/v1/files/{name}',
    route: '/api/v1/files/*',
    scope: 'read',
    summary: "One name's status: state, current version, kept versions, pin, error.",
    parameters: [path('name', z.string(), 'The name, slashes included (`boot/rhel9-vmlinuz`).')],
    responses: {
      '200': { description: 'The status.', body: fileStatus },
      '400': error('Not a valid name.'),
      '404': error('No file of that name.'),
    },
  },
  {
    method: 'get',
    path: '/api/v1/blobs/{sha256}',
    route: '/api/v1/blobs/:sha256',
    scope: 'read',
    summary: 'The bytes of a version by their sha256 (immutable; Range requests allowed).',
    parameters: [path('sha256', sha256Param, 'Lowercase hex sha256 of the bytes.')],
    responses: {
      '200': { description: 'The bytes.', body: 'binary', headers: ['ETag'] },
      '206': { description: 'The requested range.', body: 'binary', headers: ['Content-Range'] },
      '302': { description: 'Fetch the bytes from the store (a presigned URL).', body: 'none', headers: ['Location'] },
      '304': { description: 'The bytes named by If-None-Match.', body: 'none', headers: ['ETag'] },
      '400': error('Not 64 lowercase hex digits.'),
      '404': error('No blob with that sha256.'),
      '416': { description: 'The range lies outside the bytes.', body: 'none', headers: ['Content-Range'] },
    },
  },
  {
    method: 'get',
    path: '/api/v1/sites/{site}/configs',
    route: '/api/v1/sites/:site/configs',
    scope: 'read',
    summary: "A site's boot configs (pxelinux, grub, iPXE), tombstones included.",
    parameters: [SITE, WAIT, IF_NONE_MATCH],
    responses: {
      '200': { description: "The site's config catalog.", body: configCatalog, headers: ['ETag'] },
      '304': NOT_MODIFIED,
      '400': BAD_INPUT,
      '404': error('No such site.'),
    },
  },
  {
    method: 'post',
    path: '/api/v1/fetch',
    route: '/api/v1/fetch',
    scope: 'fetch',
    summary: 'Fetch a boot file from upstream and publish it: `{prefix, path}` as Foreman sends, or `{name, url}`.',
    parameters: [WAIT],
    requestBody: fetchBody,
    responses: {
      '200': { description: 'Fetched and published (with `wait`).', body: fileStatus },
      '202': { description: 'Accepted; still fetching (no `wait`, or `wait` ran out).', body: fileStatus },
      '400': BAD_INPUT,
      '413': TOO_LARGE,
      '422': failed('the bytes did not match the checksum upstream published'),
      '502': failed('upstream refused or broke off'),
      '504': failed('upstream did not answer in time'),
    },
  },
  {
    method: 'get',
    path: '/api/v1/sites',
    route: '/api/v1/sites',
    scope: 'read',
    summary: "Every configured site with its agent's latest report (docs/sites.md).",
    responses: { '200': { description: 'The sites.', body: siteList } },
  },
  {
    method: 'post',
    path: '/api/v1/sites/{site}/report',
    route: '/api/v1/sites/:site/report',
    scope: 'read',
    summary: "An agent's report of what its TFTP root holds (agents hold read tokens).",
    parameters: [path('site', siteParam, 'A site of the fetcher (`--sites`).')],
    requestBody: siteReport,
    responses: {
      '204': { description: 'Stored: the latest report of the site.', body: 'none' },
      '400': BAD_INPUT,
      '404': error('No such site (`error.code` is `not-found`).'),
      '413': TOO_LARGE,
    },
  },
  {
    method: 'post',
    path: '/api/v1/rollback',
    route: '/api/v1/rollback',
    scope: 'admin',
    summary: 'Move a name (or every name fetched under a prefix) back to a kept version and pin it there.',
    requestBody: rollbackBody,
    responses: {
      '200': { description: "Each name's move and its status afterwards.", body: lifecycleAnswer },
      '400': BAD_INPUT,
      '404': error('Neither a published name nor a prefix any name was fetched under.'),
      '409': error('No older kept version (or not the version asked for).'),
      '413': TOO_LARGE,
    },
  },
  {
    method: 'post',
    path: '/api/v1/unpin',
    route: '/api/v1/unpin',
    scope: 'admin',
    summary: 'Remove the pin: upstream publishes again, starting with bytes held while pinned.',
    requestBody: unpinBody,
    responses: {
      '200': { description: "Each name's outcome and its status afterwards.", body: lifecycleAnswer },
      '400': BAD_INPUT,
      '404': error('Neither a published name nor a prefix any name was fetched under.'),
      '413': TOO_LARGE,
    },
  },
  {
    method: 'get',
    path: '/api/v1/openapi.json',
    route: '/api/v1/openapi.json',
    scope: null,
    summary: 'This document (open: it holds no secrets).',
    responses: { '200': { description: 'The OpenAPI 3.1 document.', body: z.record(z.string(), z.unknown()) } },
  },
];

const GUARDED: Readonly<Record<string, Answer>> = {
  '401': error('No bearer token, or not a valid one (see WWW-Authenticate).'),
  '403': error('The token lacks the scope this route needs.'),
  '429': error('Too many failed authentications from this address (see Retry-After).'),
};

const HEADERS: Readonly<Record<string, string>> = {
  ETag: 'The change cursor (or the sha256) quoted: send it back as If-None-Match.',
  'Content-Range': 'The range sent, or `bytes */<size>` for a 416.',
  Location: 'Where the bytes are.',
};

function content(body: Body) {
  if (body === 'none') return {};
  if (body === 'binary') return { content: { 'application/octet-stream': { schema: {} } } };
  const id = apiRegistry.get(body)?.id;
  return { content: { 'application/json': { schema: id ? ref(id) : json(body, 'output') } } };
}

function operation(route: RouteDoc) {
  const responses = { ...route.responses, ...(route.scope ? GUARDED : {}) };
  return {
    summary: route.summary,
    ...(route.scope
      ? { description: `Needs a token with scope \`${route.scope}\` when tokens are required.` }
      : { description: 'Open: no token needed.' }),
    security: route.scope ? [{ bearer: [route.scope] }] : [],
    ...(route.parameters ? { parameters: route.parameters } : {}),
    ...(route.requestBody ? { requestBody: requestBody(route.requestBody) } : {}),
    responses: Object.fromEntries(
      Object.entries(responses).map(([status, answer]) => [
        status,
        {
          description: answer.description,
          ...(answer.headers
            ? {
                headers: Object.fromEntries(
                  answer.headers.map((h) => [h, { description: HEADERS[h], schema: { type: 'string' } }]),
                ),
              }
            : {}),
          ...content(answer.body),
        },
      ]),
    ),
  };
}

function requestBody(schema: z.ZodType) {
  const id = apiRegistry.get(schema)?.id;
  const schemaRef = id ? ref(id) : json(schema, 'input');
  // Foreman-style forms are read as well as JSON (http/params.ts); every value is a string.
  return {
    required: true,
    content: {
      'application/json': { schema: schemaRef },
      'application/x-www-form-urlencoded': { schema: schemaRef },
    },
  };
}

/**
 * Request bodies in their input form (as sent: extra fields allowed, as forms carry query parameters too), answers in
 * their output form (`additionalProperties: false`: a field the server sends but the schema lacks fails the tests).
 */
function components() {
  const uri = (id: string) => `#/components/schemas/${id}`;
  const inputs = z.toJSONSchema(apiRegistry, { io: 'input', uri }).schemas;
  const outputs = z.toJSONSchema(apiRegistry, { io: 'output', uri }).schemas;
  return Object.fromEntries(
    Object.entries(outputs).map(([id, output]) => {
      const { $schema: _s, $id: _i, ...schema } = (requestIds.has(id) ? inputs[id] : undefined) ?? output;
      return [id, schema];
    }),
  );
}

let built: { readonly version: string; readonly document: object } | undefined;

export function openApiDocument(version: string): object {
  if (built?.version !== version) built = { version, document: buildDocument(version) };
  return built.document;
}

function buildDocument(version: string): object {
  return {
    openapi: '3.1.0',
    info: {
      title: 'pxecache native API',
      version,
      description:
        'The native API of pxecache (docs/api.md). Errors answer `{"error": {"code", "message", "field"?}}`.',
    },
    paths: Object.fromEntries(
      [...new Set(ROUTES.map((r) => r.path))].map((p) => [
        p,
        Object.fromEntries(ROUTES.filter((r) => r.path === p).map((r) => [r.method, operation(r)])),
      ]),
    ),
    components: {
      schemas: components(),
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A token from `pxecache token`, required when the server requires tokens (any non-loopback listener). ' +
            'Scopes: `read` (every GET: catalog, statuses, blobs, configs, change feeds; what agents hold), ' +
            '`fetch` (POST /api/v1/fetch), `admin` (everything, rollback and unpin included).',
        },
      },
    },
  };
}
