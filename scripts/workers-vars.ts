/**
 * The variables table of docs/deploy-workers.md, generated from `workersSchema` (src/runtime/workers/config.ts):
 * every `PXECACHE_*` the Worker reads, its default and its meaning (the option's description in src/core/config.ts,
 * plus what differs on Workers). test/unit/runtime/workers-vars-doc.test.ts fails when the guide's table differs;
 * `npm run docs:workers-vars` prints the table to paste between the guide's markers.
 */
import { envName } from '../src/core/config.js';
import { workersSchema } from '../src/runtime/workers/config.js';

export const TABLE_START = '<!-- workers-vars:start (generated: npm run docs:workers-vars) -->';
export const TABLE_END = '<!-- workers-vars:end -->';

/** What an option means on Workers where its description speaks of Node's listeners or is not the whole story. */
export const WORKERS_NOTES: Readonly<Record<string, string>> = {
  tokens:
    'a secret: `npx wrangler secret put PXECACHE_TOKENS`; required (without it every request answers 500 naming it)',
  'open-smart-proxy':
    'on Workers: lets in every client that presents no verified certificate (no peer is loopback there), so only ' +
    'behind another guard (a WAF rule on `ip.src`, Cloudflare Access)',
  'trusted-hosts':
    'on Workers: CNs of the client certificate a Cloudflare mTLS rule verified (`request.cf.tlsClientAuth`)',
  'auth-failure-limit':
    'on Workers: each isolate counts on its own; add a Cloudflare rate-limiting rule for the whole zone',
  'fetch-timeout': 'on Workers also capped by the fetch step timeout of the Workflow: 2 hours',
};

/** `false`, `30`, `info`; empty strings and unset options as "empty" / "none". */
function defaultOf(key: string): string {
  const field = workersSchema.shape[key as keyof typeof workersSchema.shape];
  const parsed = field.safeParse(undefined);
  const value: unknown = parsed.success ? parsed.data : undefined;
  if (value === undefined) return 'none';
  if (value === '') return 'empty';
  return `\`${String(value)}\``;
}

/** Markdown-safe cell text: `|` would end the cell, `<name>` would be read as an HTML tag, `*` as emphasis. */
const cell = (text: string) => text.replace(/[|<>*]/g, '\\$&');

export function workersVarsTable(): string {
  const rows = Object.keys(workersSchema.shape).map((key) => {
    const field = workersSchema.shape[key as keyof typeof workersSchema.shape];
    const note = WORKERS_NOTES[key];
    const meaning = `${cell(field.description ?? '')}${note === undefined ? '' : `; ${note}`}`;
    return `| \`${envName(key)}\` | ${defaultOf(key)} | ${meaning} |`;
  });
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
