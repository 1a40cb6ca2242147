import { ConflictError } from './errors.js';
import type { RequestIdentity } from './fetch-joins.js';
import { assertStorable, bootFileName, parentNames, validateName } from './naming.js';
import { keys } from './object-keys.js';
import type { HasherFactory } from './ports.js';
import { parseUpstreamUrl, type UpstreamKind, type UrlPolicy } from './url-policy.js';
import type { ObjectStore } from '../storage/object-store.js';

/** What a fetch request asks for, once validated: the destination name and the upstream URL. */
/** A fetch as callers ask for it: Foreman's prefix + path, or the native API's name + URL. */
export type FetchRequest = (
  { readonly prefix: string; readonly path: string } | { readonly name: string; readonly url: string }
) &
  RequestIdentity;

export interface Target {
  readonly name: string;
  readonly basename: string;
  readonly url: URL;
  readonly kind: UpstreamKind;
}

/**
 * Validates requests (throwing InputError naming the field), remembering the answers: Foreman repeats the same few
 * (prefix, path) pairs, and their validation is a pure function of the request and the fixed policy. The table is
 * bounded (emptied when full); refusals are not remembered.
 */
export function createTargetResolver(policy: UrlPolicy, maxKeyBytes: number | undefined) {
  const resolved = new Map<string, Target>();
  function validate(request: FetchRequest): Target {
    if ('prefix' in request) {
      const { url, kind } = parseUpstreamUrl(request.path, 'path', policy);
      const { name, basename } = bootFileName(request.prefix, request.path);
      assertStorable(name, 'prefix', maxKeyBytes);
      return { name, basename, url, kind };
    }
    validateName(request.name, 'name');
    assertStorable(request.name, 'name', maxKeyBytes);
    const { url, kind } = parseUpstreamUrl(request.url, 'url', policy);
    const basename = request.name.slice(request.name.lastIndexOf('/') + 1);
    return { name: request.name, basename, url, kind };
  }
  return (request: FetchRequest): Target => {
    const memo =
      'prefix' in request
        ? `p\u0000${request.prefix}\u0000${request.path}`
        : `n\u0000${request.name}\u0000${request.url}`;
    const known = resolved.get(memo);
    if (known) return known;
    const target = validate(request);
    if (resolved.size >= 1024) resolved.clear();
    resolved.set(memo, target);
    return target;
  };
}

/** DESIGN.md: a name may not be a directory of another published name, or have one as its directory (409). */
export async function assertNoDirectoryCollision(store: ObjectStore, name: string): Promise<void> {
  for (const parent of parentNames(name)) {
    if (await store.head(keys.head(parent)))
      throw new ConflictError('prefix', `"${parent}" is a published file, so "${name}" cannot be created under it`);
  }
  // "~" sorts after every name character: the first key under `name/` is a descendant's head if any exists.
  const nested = await store.list(keys.headsUnder(name), { limit: 1 });
  const first = nested.keys[0];
  if (first && first !== keys.head(name) && keys.isHead(first))
    throw new ConflictError('prefix', `"${name}" is a directory of the published file "${keys.nameFromHead(first)}"`);
}

/** The lease key's URL part: a name fetched from two URLs is two jobs. */
export async function hashUrl(hasher: HasherFactory, url: string): Promise<string> {
  const h = hasher();
  h.update(new TextEncoder().encode(url));
  return (await h.digest()).slice(0, 16);
}
