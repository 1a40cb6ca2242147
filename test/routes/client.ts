/**
 * The route suite's side of the wire: plain HTTP requests to a RouteTarget (with or without its bearer token), a
 * test upstream the target can reach, and the status documents the native API must answer, built from the bytes the
 * test served. Only timestamps are left open.
 */
import { createServer } from 'node:net';
import { expect } from 'vitest';
import { versionOf, type FileStatus } from '../../src/core/records.js';
import { fetchBootFile, overHttp, sha256, type Requester } from '../helpers/api.js';
import type { Upstream, UpstreamFileOptions } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import type { RouteTarget } from './target.js';

export const ISO_UTC = expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
const READY_TIMEOUT_MS = 15_000;

export interface Served {
  readonly url: string;
  readonly bytes: Uint8Array;
}

export interface RouteClient {
  /** No credentials: the smart-proxy routes (Foreman sends no bearer token) and the 401s. */
  readonly open: Requester;
  /** With the target's admin token: the native API. */
  readonly api: Requester;
  /** Serves `bytes` at `path` on the upstream; returns the URL the target is given for it. */
  serve(path: string, bytes: Uint8Array, opts?: UpstreamFileOptions): Served;
  /** `POST /tftp/fetch_boot_file` as Foreman sends it; expects 200 with an empty body. */
  foreman(prefix: string, url: string): Promise<void>;
  /** A smart-proxy route as Foreman's ProxyAPI::TFTP calls it: form-encoded fields, Accept: application/json. */
  proxy(method: string, path: string, fields?: Record<string, string>): Promise<Response>;
  /** `GET /api/v1/files/<name>`: code and JSON body. */
  status(name: string): Promise<{ code: number; body: FileStatus }>;
  /** Polls the status until it is `state` (and, when given, holds `sha256`); fails with the last one seen. */
  settled(name: string, state: FileStatus['state'], sha?: string): Promise<FileStatus>;
  json<T>(path: string, init?: RequestInit): Promise<{ res: Response; body: T }>;
}

export function routeClient(target: RouteTarget, upstream: Upstream): RouteClient {
  const open = overHttp(target.url);
  const api: Requester = (path, init) => {
    const headers = new Headers(init?.headers);
    headers.set('authorization', `Bearer ${target.token}`);
    return open(path, { ...init, headers });
  };
  const status = async (name: string) => {
    const res = await api(`/api/v1/files/${name}`);
    return { code: res.status, body: (await res.json()) as FileStatus };
  };
  return {
    open,
    api,
    serve(path, bytes, opts) {
      upstream.set(path, bytes, opts);
      return { url: (target.upstreamUrl ?? ((u: string) => u))(upstream.url(path)), bytes };
    },
    async foreman(prefix, url) {
      const res = await fetchBootFile(open, { prefix, path: url });
      expect({ status: res.status, body: await res.text() }).toEqual({ status: 200, body: '' });
    },
    proxy: (method, path, fields) =>
      open(path, {
        method,
        headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
        ...(fields ? { body: new URLSearchParams(fields).toString() } : {}),
      }),
    status,
    settled: (name, state, sha) =>
      waitFor(
        `${name} to be ${state}${sha ? ` with ${sha.slice(0, 12)}` : ''}`,
        async () => {
          const { body } = await status(name);
          return { done: body.state === state && (sha === undefined || body.sha256 === sha), value: body };
        },
        { timeoutMs: READY_TIMEOUT_MS },
      ),
    async json<T>(path: string, init?: RequestInit) {
      const res = await api(path, init);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      return { res, body: (await res.json()) as T };
    },
  };
}

/** One kept version as the status lists it. */
export function versionEntry(served: Served, fetchedAt: unknown = ISO_UTC) {
  const sha = sha256(served.bytes);
  return { version: versionOf(sha), sha256: sha, size: served.bytes.byteLength, url: served.url, fetchedAt };
}

/** The complete ready status of `name` serving `current`, with `older` kept versions (newest first). */
export function readyStatus(name: string, current: Served, generation: number, older: readonly Served[] = []) {
  const head = versionEntry(current);
  return {
    name,
    url: current.url,
    state: 'ready',
    version: head.version,
    sha256: head.sha256,
    size: head.size,
    fetchedAt: ISO_UTC,
    checkedAt: ISO_UTC,
    error: null,
    generation,
    versions: [head, ...older.map((s) => versionEntry(s))],
    verifiedBy: null,
    pinned: null,
    held: null,
  };
}

/** The status of a name that never published a version. */
export function unpublished(name: string, url: string, state: FileStatus['state'], checkedAt: unknown) {
  const none = { version: null, sha256: null, size: null, fetchedAt: null };
  return {
    name,
    url,
    state,
    ...none,
    checkedAt,
    generation: 0,
    versions: [],
    verifiedBy: null,
    pinned: null,
    held: null,
  };
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export const reply = async (res: Response) => ({ status: res.status, body: await res.text() });
