/** Thin clients for the routes integration tests drive, over any transport (app.request, socket, child process). */
import { createHash } from 'node:crypto';
import type { FileStatus } from '../../src/core/records.js';

export type Requester = (path: string, init?: RequestInit) => Promise<Response>;

/** A requester for a server listening at `base` (a child process, a socket). */
export const overHttp =
  (base: string): Requester =>
  (path, init) =>
    fetch(base + path, init);

export type ParamStyle = 'form' | 'query' | 'json';

/** `POST /tftp/fetch_boot_file` the way Foreman's ProxyAPI::TFTP sends it (form + Accept: application/json). */
export function fetchBootFile(
  request: Requester,
  params: Record<string, string>,
  style: ParamStyle = 'form',
): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (style === 'query') {
    return request(`/tftp/fetch_boot_file?${new URLSearchParams(params).toString()}`, { method: 'POST', headers });
  }
  if (style === 'json') {
    headers['content-type'] = 'application/json';
    return request('/tftp/fetch_boot_file', { method: 'POST', headers, body: JSON.stringify(params) });
  }
  headers['content-type'] = 'application/x-www-form-urlencoded';
  return request('/tftp/fetch_boot_file', { method: 'POST', headers, body: new URLSearchParams(params).toString() });
}

export async function getStatus(request: Requester, name: string): Promise<{ code: number; body: FileStatus }> {
  const res = await request(`/api/v1/files/${name}`);
  return { code: res.status, body: (await res.json()) as FileStatus };
}

export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Deterministic pseudo-random bytes (a kernel stand-in), different for each seed. */
export function bytesOf(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let at = 0; at < size; at += block.byteLength) {
    block.copy(out, at, 0, Math.min(block.byteLength, size - at));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}
