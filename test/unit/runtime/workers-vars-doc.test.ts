/**
 * docs/deploy-workers.md lists every variable the Worker reads: its table must be the one generated from
 * `workersSchema` (scripts/workers-vars.ts), and the names it and wrangler.toml use must be ones the Worker reads.
 */
import { describe, expect, it } from 'vitest';
import { envName } from '../../../src/core/config.js';
import { workersSchema } from '../../../src/runtime/workers/config.js';
import { TABLE_END, TABLE_START, WORKERS_NOTES, workersVarsTable } from '../../../scripts/workers-vars.js';
import { expectGeneratedPart, readRepoFile as read } from '../../helpers/generated-doc.js';
const GUIDE = 'docs/deploy-workers.md';
const workerVariables = new Set(Object.keys(workersSchema.shape).map(envName));

describe('docs/deploy-workers.md variables table', () => {
  it('is the table generated from workersSchema (regenerate: npm run docs:workers-vars)', () => {
    const markers = { start: TABLE_START, end: TABLE_END };
    expectGeneratedPart(GUIDE, markers, workersVarsTable(), 'npm run docs:workers-vars');
  });

  it('has Workers notes only for variables the Worker reads', () => {
    const stale = Object.keys(WORKERS_NOTES).filter((key) => !(key in workersSchema.shape));
    expect(stale).toEqual([]);
  });

  it('names no PXECACHE_* variable the Worker does not read (besides the R2 binding and the agent token)', () => {
    const others = new Set(['PXECACHE_BUCKET', 'PXECACHE_TOKEN']);
    const named = new Set(read(GUIDE).match(/\bPXECACHE_[A-Z_]+\b/g));
    const unknown = [...named].filter((name) => !workerVariables.has(name) && !others.has(name));
    expect(unknown).toEqual([]);
  });

  it('matches wrangler.toml: its [vars] are Worker variables, and the tokens are not among them', () => {
    const vars =
      read('wrangler.toml')
        .split(/^\[vars\]$/m)[1]
        ?.split(/^\[/m)[0] ?? '';
    const names = [...vars.matchAll(/^(PXECACHE_[A-Z_]+)\s*=/gm)].map((m) => m[1] as string);
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((name) => !workerVariables.has(name))).toEqual([]);
    expect(names).not.toContain('PXECACHE_TOKENS');
  });
});
