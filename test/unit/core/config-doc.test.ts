/**
 * docs/configuration.md is the reference of every command's options: its generated part must be the one made from
 * the zod schemas the CLI parses with (scripts/config-reference.ts), and its prose may name only real options.
 */
import { describe, expect, it } from 'vitest';
import { commands, envName } from '../../../src/core/config.js';
import { REFERENCE_END, REFERENCE_START, configReference } from '../../../scripts/config-reference.js';
import { expectGeneratedPart, readRepoFile } from '../../helpers/generated-doc.js';

const GUIDE = 'docs/configuration.md';
const guide = readRepoFile(GUIDE);
const flags = new Set(Object.values(commands).flatMap((schema) => Object.keys(schema.shape)));

describe('docs/configuration.md', () => {
  it('holds the reference generated from the config schemas (regenerate: npm run docs:config)', () => {
    const markers = { start: REFERENCE_START, end: REFERENCE_END };
    expectGeneratedPart(GUIDE, markers, configReference(), 'npm run docs:config');
  });

  it('lists every option of every command', () => {
    for (const [command, schema] of Object.entries(commands)) {
      expect(guide).toContain(`### pxecache ${command}\n`);
      for (const flag of Object.keys(schema.shape)) expect(guide).toContain(`| \`${envName(flag)}\` |`);
    }
  });

  it('names no flag or PXECACHE_* variable outside the schemas in its prose', () => {
    const prose = guide.slice(0, guide.indexOf(REFERENCE_START));
    const named = [...prose.matchAll(/(?<![\w-])--(?:no-)?([a-z][a-z0-9-]*)/g)].map((m) => m[1] as string);
    expect(named.filter((f) => !flags.has(f) && f !== 'help' && f !== 'flag')).toEqual([]); // --flag: the form
    const variables = new Set([...flags].map(envName));
    const others = ['PXECACHE_TOKEN', 'PXECACHE_BUCKET'];
    const vars = prose.match(/\bPXECACHE_[A-Z_]+\b/g) ?? [];
    expect(vars.filter((v) => !variables.has(v) && !others.includes(v))).toEqual([]);
  });
});
