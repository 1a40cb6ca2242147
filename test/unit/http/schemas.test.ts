/**
 * The native API schemas (src/http/schemas.ts) against the TypeScript types the code writes answers with, both ways
 * (a field added to either side fails to compile), and the input messages clients know, which name their field.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { Catalog, Changes, ConfigCatalog, FileStatus } from '../../../src/core/records.js';
import { scopeFor } from '../../../src/http/auth.js';
import type { catalog, changes, configCatalog, fileStatus } from '../../../src/http/schemas.js';
import {
  fetchByName,
  fetchByPrefix,
  parseInput,
  rollbackBody,
  sinceParam,
  waitParam,
  type Answer,
  type DeepReadonly,
} from '../../../src/http/schemas.js';

describe('answer schemas', () => {
  it('are the types of core/records.ts, field for field', () => {
    expectTypeOf<Answer<typeof fileStatus>>().toEqualTypeOf<DeepReadonly<FileStatus>>();
    expectTypeOf<Answer<typeof catalog>>().toEqualTypeOf<DeepReadonly<Catalog & { complete: boolean }>>();
    expectTypeOf<Answer<typeof changes>>().toEqualTypeOf<DeepReadonly<Changes>>();
    expectTypeOf<Answer<typeof configCatalog>>().toEqualTypeOf<DeepReadonly<ConfigCatalog>>();
  });
});

describe('input schemas', () => {
  const message = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      return (err as Error).message;
    }
    return 'accepted';
  };

  it('answer the messages the routes always gave, naming the field', () => {
    expect(message(() => parseInput(sinceParam, 'x'.repeat(40), 'since'))).toBe(
      `since: "${'x'.repeat(20)}" is not a cursor from this API`,
    );
    expect(message(() => parseInput(waitParam, '1e3', 'wait'))).toBe('wait: "1e3" is not a number of seconds');
    expect(message(() => parseInput(fetchByPrefix, { path: 'http://x/y' }))).toBe('prefix: is required with "path"');
    expect(message(() => parseInput(fetchByPrefix, { prefix: 'boot/x', path: '' }))).toBe(
      'path: is required with "prefix"',
    );
    expect(message(() => parseInput(fetchByName, {}))).toBe('name: is required (send {prefix, path} or {name, url})');
    expect(message(() => parseInput(fetchByName, { name: 'x' }))).toBe('url: is required with "name"');
    expect(message(() => parseInput(rollbackBody, { target: '' }))).toBe('target: is required');
    expect(message(() => parseInput(rollbackBody, { target: 'x', to: '' }))).toBe(
      'to: is empty (leave it out for the previous kept version)',
    );
  });

  it('turn `wait` into seconds, at most 300', () => {
    expect(parseInput(waitParam, '', 'wait')).toBe(0);
    expect(parseInput(waitParam, '2.5', 'wait')).toBe(2.5);
    expect(parseInput(waitParam, '9999', 'wait')).toBe(300);
  });

  it('keep only the fields of the chosen form (the query and other body fields stay out of the request)', () => {
    expect(parseInput(fetchByName, { name: 'a/b', url: 'http://x/b', wait: '5', prefix: undefined })).toEqual({
      name: 'a/b',
      url: 'http://x/b',
    });
  });
});

describe('scopeFor', () => {
  it('leaves the API document open and every other native route guarded', () => {
    expect(scopeFor('GET', '/api/v1/openapi.json')).toBeNull();
    expect(scopeFor('HEAD', '/api/v1/openapi.json')).toBeNull();
    expect(scopeFor('POST', '/api/v1/openapi.json')).toBe('admin');
    expect(scopeFor('GET', '/api/v1/openapi.json/x')).toBe('read');
    expect(scopeFor('GET', '/api/v1/files')).toBe('read');
    expect(scopeFor('POST', '/api/v1/fetch')).toBe('fetch');
    expect(scopeFor('POST', '/api/v1/rollback')).toBe('admin');
  });
});
