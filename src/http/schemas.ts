import { siteReportSchema, type SiteInfo } from '../core/site-reports.js';
import { z } from 'zod';
import { InputError } from '../core/errors.js';
import { CURSOR_PATTERN } from '../core/events.js';
import type {
  Catalog,
  CatalogEntry,
  Changes,
  ConfigCatalog,
  ConfigEntry,
  ErrorInfo,
  FileStatus,
  Pin,
  PublicVersion,
  VerifiedBy,
} from '../core/records.js';

/**
 * The native API's inputs and answers as zod schemas: the routes validate with them and `openapi.ts` publishes them
 * (`GET /api/v1/openapi.json`), so the document cannot drift from what the routes accept. Answers are checked against
 * the TypeScript types in core/records.ts (`satisfies` here, both directions in test/unit/http/schemas.test.ts).
 * Input messages are the ones clients and tests already know: each names its field (InputError, a 400).
 */
export const apiRegistry = z.registry<{ id: string; description?: string }>();

/** Ids of request bodies: published as clients send them (zod's input form), answers as the server sends them. */
export const requestIds = new Set<string>();

function named<S extends z.ZodType>(schema: S, id: string, description?: string): S {
  apiRegistry.add(schema, description === undefined ? { id } : { id, description });
  return schema;
}
const request = <S extends z.ZodType>(schema: S, id: string, description?: string): S => {
  requestIds.add(id);
  return named(schema, id, description);
};

// --- inputs -------------------------------------------------------------------------------------------------------

/** Longest slice of a bad value echoed in a message: enough to recognise it, never a flood. */
const echo = (input: unknown) => `"${String(input).slice(0, 20)}"`;

export const MAX_WAIT_S = 300;

export const sinceParam = z
  .string()
  .regex(CURSOR_PATTERN, { error: (iss) => `${echo(iss.input)} is not a cursor from this API` });

/** Seconds to hold the request open (empty or absent: 0, not waiting); more than MAX_WAIT_S is cut to it. */
export const waitParam = z
  .string()
  .regex(/^(\d+(\.\d+)?)?$/, { error: (iss) => `${echo(iss.input)} is not a number of seconds` })
  .transform((raw) => (raw === '' ? 0 : Math.min(Number(raw), MAX_WAIT_S)));

export const siteParam = z.string();

export const sha256Param = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

const requiredString = (message: string) => z.string({ error: message }).min(1, message);

/** Foreman's form: the server derives the name from the prefix and the URL's basename (DESIGN.md "Naming"). */
export const fetchByPrefix = request(
  z.object({
    prefix: requiredString('is required with "path"'),
    path: requiredString('is required with "prefix"'),
  }),
  'FetchByPrefix',
);

export const fetchByName = request(
  z.object({
    name: requiredString('is required (send {prefix, path} or {name, url})'),
    url: requiredString('is required with "name"'),
  }),
  'FetchByName',
);

export const fetchBody = request(z.union([fetchByPrefix, fetchByName]), 'FetchBody');

export const rollbackBody = request(
  z.object({
    target: requiredString('is required'),
    to: z.string().min(1, 'is empty (leave it out for the previous kept version)').optional(),
  }),
  'RollbackBody',
  'target: a published name, or a prefix as Foreman sent it (every name fetched under it); to: a kept version',
);

export const unpinBody = request(z.object({ target: requiredString('is required') }), 'UnpinBody');

/** Parses one input; the first issue becomes the 400 clients know (`<field>: <why>`). */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, field = 'body'): z.output<S> {
  const got = schema.safeParse(value);
  if (got.success) return got.data;
  const [issue] = got.error.issues;
  const at = issue?.path.length ? issue.path.join('.') : field;
  throw new InputError(at, issue?.message ?? 'is not valid');
}

// --- answers ------------------------------------------------------------------------------------------------------

export const errorInfo = named(
  z.object({ code: z.string(), message: z.string() }),
  'ErrorInfo',
) satisfies z.ZodType<ErrorInfo>;

/** Every failed native API request: `field` names the bad input of a 400 or 409. */
export const errorBody = named(
  z.object({ error: z.object({ code: z.string(), message: z.string(), field: z.string().optional() }) }),
  'Error',
);

export const verifiedBy = named(
  z.object({
    kind: z.enum(['treeinfo', 'sha256sums', 'md5sums']),
    url: z.string(),
    algorithm: z.enum(['sha256', 'md5']),
  }),
  'VerifiedBy',
) satisfies z.ZodType<VerifiedBy>;

export const pin = named(
  z.object({ version: z.string(), at: z.string(), reason: z.enum(['rollback', 'pin']) }),
  'Pin',
) satisfies z.ZodType<Pin>;

export const publicVersion = named(
  z.object({ version: z.string(), sha256: z.string(), size: z.number(), url: z.string(), fetchedAt: z.string() }),
  'PublicVersion',
) satisfies z.ZodType<PublicVersion>;

export const fileStatus = named(
  z.object({
    name: z.string(),
    url: z.string().nullable(),
    state: z.enum(['fetching', 'ready', 'failed', 'nfs-noop']),
    version: z.string().nullable(),
    sha256: z.string().nullable(),
    size: z.number().nullable(),
    fetchedAt: z.string().nullable(),
    checkedAt: z.string().nullable(),
    error: errorInfo.nullable(),
    generation: z.number(),
    versions: z.array(publicVersion),
    verifiedBy: verifiedBy.nullable(),
    pinned: pin.nullable(),
    held: publicVersion.nullable(),
  }),
  'FileStatus',
) satisfies z.ZodType<FileStatus>;

export const catalogEntry = named(
  z.object({
    name: z.string(),
    generation: z.number(),
    version: z.string(),
    sha256: z.string(),
    size: z.number(),
    basename: z.string(),
    url: z.string(),
    fetchedAt: z.string(),
    key: z.string(),
    versions: z.array(z.string()),
  }),
  'CatalogEntry',
) satisfies z.ZodType<CatalogEntry>;

/** GET /api/v1/files: `complete: false` only for an answer to `since` that lists just the changed names. */
export const catalog = named(
  z.object({ cursor: z.string(), etag: z.string(), complete: z.boolean(), entries: z.array(catalogEntry) }),
  'Catalog',
) satisfies z.ZodType<Catalog & { readonly complete: boolean }>;

export const configEntry = named(
  z.object({
    path: z.string(),
    deleted: z.boolean(),
    sha256: z.string(),
    size: z.number(),
    key: z.string(),
    updatedAt: z.string(),
  }),
  'ConfigEntry',
) satisfies z.ZodType<ConfigEntry>;

export const configCatalog = named(
  z.object({ site: z.string(), cursor: z.string(), etag: z.string(), entries: z.array(configEntry) }),
  'ConfigCatalog',
) satisfies z.ZodType<ConfigCatalog>;

export const changes = named(
  z.object({
    cursor: z.string(),
    complete: z.boolean(),
    site: z.string().nullable(),
    files: z.array(catalogEntry),
    configs: z.array(configEntry),
  }),
  'Changes',
) satisfies z.ZodType<Changes>;

/** What rollback and unpin answer: each name's move and its status afterwards. */
export const lifecycleAnswer = named(
  z.object({
    target: z.string(),
    files: z.array(
      z.object({
        name: z.string(),
        outcome: z.enum(['pinned', 'unpinned', 'published-held', 'not-pinned']),
        from: z.string(),
        status: fileStatus.nullable(),
      }),
    ),
  }),
  'LifecycleAnswer',
);
export type LifecycleAnswer = Answer<typeof lifecycleAnswer>;

/** An agent's report of its site (core/site-reports.ts validates it with this very schema). */
export const siteReport = request(siteReportSchema, 'SiteReport');

/** `GET /api/v1/sites`: every configured site with its latest report. */
export const siteList = named(
  z.array(z.object({ name: z.string(), serverName: z.string(), report: siteReport.nullable() })),
  'Sites',
) satisfies z.ZodType<SiteInfo[]>;

/** An answer's type as records.ts writes them (readonly throughout), so a schema and a type compare both ways. */
export type Answer<S extends z.ZodType> = DeepReadonly<z.output<S>>;
export type DeepReadonly<T> = T extends readonly (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;
