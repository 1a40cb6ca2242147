import { z } from 'zod';
import { LIST_FORMAT, SCOPES, TOKEN_ID } from './auth.js';
import { ConfigError } from './errors.js';
import { parseHostList } from './host-rules.js';

/**
 * Every option of every command, in one table: the CLI derives its flags, `PXECACHE_*` variables and `--help` from
 * it, and config is validated once, reporting every issue with the option's flag name.
 */

const seconds = (def: number, what: string) => z.coerce.number().positive().max(86_400).default(def).describe(what);
const bool = (def: boolean, what: string) =>
  z
    .union([z.boolean(), z.enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'])])
    .transform((v) => v === true || v === '1' || v === 'true' || v === 'yes' || v === 'on')
    .default(def)
    .describe(what);

/** S3 network limits, for every command that may open an s3:// store (agents reading a bucket directly included). */
const s3Timeouts = {
  's3-connect-timeout': seconds(5, 's3:// stores: connect timeout, seconds'),
  's3-idle-timeout': seconds(
    60,
    's3:// stores: longest silence on one S3 request (sending, awaiting or reading the answer), seconds; then retried',
  ),
};

/** Agents (and serve's in-process one): agent/set-hold.ts. */
const setHold = z.coerce
  .number()
  .min(0)
  .max(3600)
  .default(120)
  .describe("longest a respin set's link swaps wait for members the source is still fetching, seconds (0: never)");

const storeUrl = z
  .string()
  .regex(/^(file:.+|memory:|s3:\/\/.+)$/, 'must be file:<path>, s3://<bucket>/<prefix> or memory:');
const storeHelp = 'where versions and the catalog live: file:<dir> (embedded default) or s3://<bucket>/<prefix>';

/** Validated here so a bad entry is a start-up error naming the option; the runtime builds the rules from it. */
const hostList = (source: '--upstream-allow' | '--upstream-deny', what: string) =>
  z
    .string()
    .superRefine((value, ctx) => {
      for (const message of parseHostList(value, source).issues) ctx.addIssue({ code: 'custom', message });
    })
    .default('')
    .describe(what);

const upstream = {
  'verify-tls': bool(true, "verify upstream TLS certificates (smart-proxy's verify_server_cert)"),
  'connect-timeout': seconds(10, 'upstream connect timeout, seconds'),
  'headers-timeout': seconds(30, 'upstream response headers timeout, seconds'),
  'idle-timeout': seconds(60, 'longest pause between two upstream body chunks, seconds'),
  'fetch-timeout': seconds(
    7200,
    'longest one download may take, seconds (a trickle that never pauses long enough for --idle-timeout)',
  ),
  'max-redirects': z.coerce.number().int().min(0).max(20).default(5).describe('redirects followed per fetch'),
  'upstream-allow': hostList(
    '--upstream-allow',
    'only these upstream hosts: names, "*.domain", addresses, CIDRs, comma-separated (default: any not denied)',
  ),
  'upstream-deny': hostList(
    '--upstream-deny',
    'never these upstream hosts, besides 169.254.0.0/16, fe80::/10, fd00:ec2::254, 0.0.0.0/8 and ::',
  ),
  'upstream-ca-file': z
    .string()
    .min(1)
    .optional()
    .describe('PEM file of a CA trusted for upstream TLS, besides the default ones (verification stays on)'),
  'lease-ttl': seconds(30, 'fetch lease lifetime: another instance takes over a fetch whose holder stopped renewing'),
  'stale-write-age': seconds(
    3600,
    "in-flight writes idle this long (file store .tmp-*, S3 multipart uploads) are a dead writer's: removed at start",
  ),
  's3-part-size': z.coerce
    .number()
    .int()
    .min(5)
    .max(5120)
    .default(5)
    .describe('s3:// stores: multipart part size, MiB (a streamed fetch holds at most (queue + 1) x part)'),
  's3-queue-size': z.coerce
    .number()
    .int()
    .min(1)
    .max(64)
    .default(3)
    .describe('s3:// stores: parts uploaded in parallel'),
  ...s3Timeouts,
  'accept-single-writer': bool(
    false,
    'run on a store that ignores create-only writes, promising this is its only writer',
  ),
  'keep-versions': z.coerce.number().int().min(2).max(100).default(3).describe('versions kept per name (>= 2)'),
  'log-level': z.enum(['debug', 'info', 'warn', 'error']).default('info').describe('log verbosity'),
  'log-format': z
    .enum(['auto', 'json', 'pretty'])
    .default('auto')
    .describe('log lines on stderr: json, pretty (human-readable), or auto (pretty on a terminal, else json)'),
};

const progress = bool(true, 'show download progress on stderr: bars on a terminal, plain lines otherwise');

/** A year: far beyond any useful GC interval or grace period, and still a safe timer delay. */
const MAX_GC_SECONDS = 365 * 86_400;
const gcGrace = z.coerce
  .number()
  .min(0)
  .max(MAX_GC_SECONDS)
  .default(86_400)
  .describe('store GC: seconds an unreferenced version or data object stays before it is deleted');

export const serveSchema = z.object({
  port: z.coerce.number().int().min(0).max(65_535).default(8000).describe('HTTP port (0 picks a free one)'),
  host: z.string().min(1).default('127.0.0.1').describe('address to bind'),
  store: storeUrl.default('file:./pxecache-data/store').describe(storeHelp),
  'tftp-root': z.string().min(1).optional().describe('also run an agent in-process into this TFTP root'),
  'state-dir': z.string().min(1).optional().describe('agent state, outside the root (default <tftp-root>.state)'),
  'server-name': z
    .string()
    .default('')
    .describe("smart-proxy's tftp_servername of the default site, answered on /tftp/serverName"),
  sites: z
    .string()
    .default('')
    .describe('more sites, each a virtual smart proxy at /sites/<name>: "east=<tftp server name>,west"'),
  'agent-interval': seconds(2, 'in-process agent: catalog poll interval, seconds'),
  'gc-interval': z.coerce
    .number()
    .int()
    .min(0)
    .max(MAX_GC_SECONDS)
    .default(86_400)
    .describe('store GC (see pxecache gc) every this many seconds, the first 10 minutes after start; 0: never'),
  'gc-grace': gcGrace,
  'set-hold': setHold,
  'tokens-file': z
    .string()
    .min(1)
    .optional()
    .describe('bearer tokens (hashed) for the native API: JSON {"tokens":[{"id","sha256","scopes":[...]}]}'),
  tokens: z.string().optional().describe(`bearer tokens (hashed), "${LIST_FORMAT}" separated by ","`),
  'open-smart-proxy': bool(
    false,
    'accept smart-proxy routes (/tftp/*, /v2/features) over plain HTTP from non-loopback clients',
  ),
  'insecure-no-auth': bool(false, 'allow a non-loopback --host without tokens: the native API unauthenticated'),
  'auth-failure-limit': z.coerce
    .number()
    .int()
    .min(0)
    .max(10_000)
    .default(10)
    .describe('failed bearer-token attempts per remote address per minute before 429 (0: no limit)'),
  http: bool(true, 'serve plain HTTP on --port (--no-http with --https-port: HTTPS only)'),
  'https-port': z.coerce
    .number()
    .int()
    .min(0)
    .max(65_535)
    .optional()
    .describe("HTTPS port requiring client certificates, smart-proxy's https_port (0 picks a free one; default off)"),
  'ssl-certificate': z
    .string()
    .min(1)
    .optional()
    .describe("HTTPS server certificate, PEM (smart-proxy's ssl_certificate)"),
  'ssl-private-key': z.string().min(1).optional().describe("its private key, PEM (smart-proxy's ssl_private_key)"),
  'ssl-ca-file': z
    .string()
    .min(1)
    .optional()
    .describe("CA that client certificates must chain to, PEM (smart-proxy's ssl_ca_file)"),
  'trusted-hosts': z
    .string()
    .optional()
    .describe("client-certificate CNs allowed on --https-port, comma-separated (smart-proxy's trusted_hosts)"),
  ...upstream,
});

export const agentSchema = z.object({
  source: z
    .string()
    .regex(/^(https?:\/\/.+|file:.+|s3:\/\/.+)$/, 'must be an http(s):// fetcher URL or a store URL')
    .describe('where to read the catalog: http(s)://<fetcher> or a store URL (file:, s3://)'),
  'tftp-root': z.string().min(1).describe('the TFTP root to maintain'),
  once: bool(false, 'sync once and exit: 0 when the root matches the catalog'),
  progress: bool(true, 'with --once: show download progress on stderr (bars on a terminal, plain lines otherwise)'),
  site: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be lowercase letters, digits and "-"')
    .default('default')
    .describe('site name reported to the fetcher'),
  'state-dir': z.string().min(1).optional().describe('agent state, outside the root (default <tftp-root>.state)'),
  interval: seconds(2, 'catalog poll interval, seconds'),
  wait: z.coerce.number().int().min(0).max(300).default(30).describe('long-poll wait per catalog request, seconds'),
  'report-interval': seconds(
    60,
    'site report heartbeat, seconds (also after each pass that changed something); a report 3 intervals + 60 s old is stale',
  ),
  'set-hold': setHold,
  token: z
    .string()
    .optional()
    .describe('bearer token (scope read) for an http(s) source; prefer PXECACHE_TOKEN: command lines are visible'),
  ...s3Timeouts,
  'log-level': upstream['log-level'],
  'log-format': upstream['log-format'],
});

export const fetchSchema = z.object({
  store: storeUrl.default('file:./pxecache-data/store').describe(storeHelp),
  prefix: z.string().describe('destination prefix, as Foreman sends it (e.g. boot/centos-9-AbCd)'),
  url: z.string().describe('upstream URL of the boot file'),
  progress,
  ...upstream,
});

/** Options of a command that writes a store without serving or fetching (`import`). */
const storeWriter = {
  'keep-versions': upstream['keep-versions'],
  'accept-single-writer': upstream['accept-single-writer'],
  's3-part-size': upstream['s3-part-size'],
  's3-queue-size': upstream['s3-queue-size'],
  ...s3Timeouts,
  'stale-write-age': upstream['stale-write-age'],
  'log-level': upstream['log-level'],
};

export const importSchema = z.object({
  source: z
    .string()
    .min(1)
    .describe('a boot file, a directory of them (not recursive), or a bundle made by pxecache export'),
  store: storeUrl.default('file:./pxecache-data/store').describe(storeHelp),
  prefix: z.string().optional().describe('destination prefix, as for fetch (media; a bundle carries its own names)'),
  'as-url': z
    .string()
    .optional()
    .describe('upstream URL the file stands for, where revalidations go (a directory: its URL, ending in "/")'),
  'upstream-allow': upstream['upstream-allow'],
  'upstream-deny': upstream['upstream-deny'],
  progress,
  ...storeWriter,
});

export const exportSchema = z.object({
  names: z
    .union([z.array(z.string().min(1)), z.string().transform((v) => v.split(/\s+/).filter(Boolean))])
    .optional()
    .describe('names to export (operands; as a variable: separated by spaces)'),
  store: storeUrl.default('file:./pxecache-data/store').describe(storeHelp),
  out: z.string().min(1).describe('bundle file to write (a tar archive; written under a temporary name, then renamed)'),
  prefix: z.string().min(1).optional().describe('export every name starting with this (default: all, unless names)'),
  ...s3Timeouts,
});

export const gcSchema = z.object({
  store: storeUrl.default('file:./pxecache-data/store').describe(storeHelp),
  'dry-run': bool(false, 'only show what would go: delete nothing and record nothing (not even the marks)'),
  grace: gcGrace,
  ...s3Timeouts,
});

const scopeList = new RegExp(`^(${SCOPES.join('|')})([+,](${SCOPES.join('|')}))*$`);
export const tokenSchema = z.object({
  id: z
    .string()
    .regex(TOKEN_ID, 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit')
    .describe('who holds the token (a site, an agent, an operator); named in logs and 403 answers'),
  scopes: z
    .string()
    .regex(scopeList, `must be one or more of ${SCOPES.join(', ')}, joined with "+"`)
    .default('read')
    .describe('read (agents), fetch (POST /api/v1/fetch), admin (everything); joined with "+"'),
});

/** `rollback` and `unpin` (core/rollback.ts): pointer moves in a store, as a writer, without a server. */
const lifecycle = {
  target: z
    .string()
    .min(1)
    .describe('a published name (boot/x-vmlinuz), or a prefix: every name fetched under it (kernel + initrd)'),
  store: storeUrl.default('file:./pxecache-data/store').describe(storeHelp),
  'accept-single-writer': upstream['accept-single-writer'],
  ...s3Timeouts,
  'log-level': upstream['log-level'],
};
export const rollbackSchema = z.object({
  ...lifecycle,
  to: z
    .string()
    .min(1)
    .optional()
    .describe('the kept version to move to (a single name only; default: the one before the current)'),
});
export const unpinSchema = z.object({ ...lifecycle, 'keep-versions': upstream['keep-versions'] });

/** `pxecache status [<name>]`: the state table the dashboard shows (docs/sites.md). */
export const statusSchema = z.object({
  name: z.string().min(1).optional().describe('one published name: its status and its row of every site'),
  source: agentSchema.shape.source.describe('where to read the state: http(s)://<fetcher> or a store URL'),
  token: agentSchema.shape.token,
  ...s3Timeouts,
});

export type ServeConfig = Readonly<z.output<typeof serveSchema>>;
export type AgentConfig = Readonly<z.output<typeof agentSchema>>;
export type FetchConfig = Readonly<z.output<typeof fetchSchema>>;
export type TokenConfig = Readonly<z.output<typeof tokenSchema>>;
export type ImportConfig = Readonly<z.output<typeof importSchema>>;
export type ExportConfig = Readonly<z.output<typeof exportSchema>>;
export type GcConfig = Readonly<z.output<typeof gcSchema>>;
export type RollbackConfig = Readonly<z.output<typeof rollbackSchema>>;
export type UnpinConfig = Readonly<z.output<typeof unpinSchema>>;
export type StatusConfig = Readonly<z.output<typeof statusSchema>>;

export const commands = {
  serve: serveSchema,
  agent: agentSchema,
  fetch: fetchSchema,
  token: tokenSchema,
  import: importSchema,
  export: exportSchema,
  gc: gcSchema,
  rollback: rollbackSchema,
  unpin: unpinSchema,
  status: statusSchema,
} as const;
export type CommandName = keyof typeof commands;

/** Options a command also takes as operands, in order (`pxecache <command> <operand>...`); see cli/args.ts. */
export const commandOperands: Partial<Record<CommandName, readonly string[]>> = {
  import: ['source'],
  export: ['names...'],
  rollback: ['target'],
  unpin: ['target'],
  status: ['name'],
};

/** Validates raw option values (strings from flags or env), reporting every issue at once as `--flag: problem`. */
export function parseConfig<C extends CommandName>(
  command: C,
  raw: Record<string, unknown>,
): z.output<(typeof commands)[C]> {
  const result = commands[command].safeParse(raw);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((i) => {
        const key = String(i.path[0] ?? '');
        const got = raw[key];
        return `--${key}: ${got === undefined ? 'is required' : i.message}`;
      }),
    );
  }
  return Object.freeze(result.data) as z.output<(typeof commands)[C]>;
}

/** `--tftp-root` -> `PXECACHE_TFTP_ROOT` */
export const envName = (flag: string) => `PXECACHE_${flag.toUpperCase().replace(/-/g, '_')}`;

/**
 * Runs a parser that reports `serve` flags (`--tokens entry 2: ...`) for a runtime configured by variables (Workers,
 * Lambda): every issue names `PXECACHE_TOKENS` instead.
 */
export function withVariableNames<T>(run: () => T): T {
  try {
    return run();
  } catch (err) {
    throw variableNamed(err);
  }
}

/** `withVariableNames` for an error already caught (an async opener's). */
export function variableNamed(err: unknown): unknown {
  if (!(err instanceof ConfigError)) return err;
  return new ConfigError(err.issues.map((i) => i.replace(/--([a-z][a-z-]*)/g, (_, flag: string) => envName(flag))));
}

/** The options in `keys` as a runtime configured by variables has them (`PXECACHE_<OPTION>`), unset ones left out. */
export function optionsFromVariables(
  keys: readonly string[],
  env: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const key of keys) {
    const value = env[envName(key)];
    if (typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number') raw[key] = value;
  }
  return raw;
}
