/**
 * Checks answers of the native API against its OpenAPI document (src/http/openapi.ts) with ajv, so any test that
 * drives a native route can assert the route answered what the document promises: `expectConforms(method, path,
 * status, body)`. Every check is recorded in `conformed` (method, document path, status) for coverage checks.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { expect } from 'vitest';
import { openApiDocument } from '../../src/http/openapi.js';

// ajv-formats is CommonJS with `exports.default`: NodeNext sees the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

interface Doc {
  readonly paths: Record<string, Record<string, { responses: Record<string, ResponseDoc> }>>;
}
interface ResponseDoc {
  readonly content?: Record<string, { schema: object }>;
}

export const DOCUMENT = openApiDocument('test') as Doc;
const DOC_ID = 'https://pxecache.invalid/openapi.json';

const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats(ajv);
// The document's own keywords: its schemas are reached by JSON pointer ($ref), never validated as one.
ajv.addVocabulary(['openapi', 'info', 'paths', 'components']);
ajv.addSchema(DOCUMENT, DOC_ID);

/** `${METHOD} ${documentPath} ${status}` of every answer checked so far in this test file. */
export const conformed = new Set<string>();

/** The document's path template a concrete request path falls under (`/api/v1/files/boot/x` -> `.../{name}`). */
export function documentPath(requestPath: string): string {
  const path = requestPath.split('?', 1)[0] ?? '';
  const templates = Object.keys(DOCUMENT.paths);
  if (templates.includes(path)) return path;
  const match = templates.find((t) =>
    new RegExp(`^${t.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '(.+)')}$`).test(path),
  );
  if (!match) throw new Error(`no path of the API document matches ${path}`);
  return match;
}

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/** Asserts the document lists this status for the route and the body matches its schema (none: an empty body). */
export function expectConforms(method: string, requestPath: string, status: number, body: unknown): void {
  const path = documentPath(requestPath);
  const op = DOCUMENT.paths[path]?.[method.toLowerCase()];
  expect(op, `${method} ${path} is in the API document`).toBeDefined();
  const answer = op?.responses[String(status)];
  expect(answer, `${method} ${path} documents status ${status}`).toBeDefined();
  const content = answer?.content ?? {};
  if (content['application/json']) {
    const at = `${DOC_ID}#/${pointer('paths', path, method.toLowerCase(), 'responses', String(status), 'content', 'application/json', 'schema')}`; // prettier-ignore
    const validate = ajv.getSchema(at) ?? ajv.compile({ $ref: at });
    const ok = validate(body);
    expect(ok ? [] : validate.errors, `${method} ${requestPath} ${status} body conforms`).toEqual([]);
  } else if (content['application/octet-stream']) {
    expect(body, `${method} ${requestPath} ${status} answers bytes`).toBeInstanceOf(Uint8Array);
  } else {
    expect(body === null || body === '' || (body instanceof Uint8Array && body.byteLength === 0)).toBe(true);
  }
  conformed.add(`${method.toUpperCase()} ${path} ${status}`);
}

/** Reads a response's body as the document types it and checks it; answers the parsed JSON (or bytes, or null). */
export async function conforms(method: string, requestPath: string, res: Response): Promise<unknown> {
  const type = res.headers.get('content-type') ?? '';
  const bytes = new Uint8Array(await res.arrayBuffer());
  const body = type.startsWith('application/json')
    ? (JSON.parse(new TextDecoder().decode(bytes)) as unknown)
    : bytes.byteLength === 0
      ? null
      : bytes;
  expectConforms(method, requestPath, res.status, body);
  return body;
}
