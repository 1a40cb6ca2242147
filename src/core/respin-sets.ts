/**
 * Respin sets: the names published under one Foreman `prefix` (kernel and initrd, shim and grub when present). Foreman
 * fixes the names and asks for them one call at a time, so a respin of the medium reaches pxecache as separate jobs.
 * When one job finds upstream changed for a name that is already published, it revalidates the other published
 * members of its set at once, through the fetcher's own `submit` (coalesced with Foreman's calls for them): they turn
 * `fetching` before the first one publishes, and an agent holds the set's link swaps until none is fetching
 * (agent/set-hold.ts), then renames them back to back. See docs/respin-sets.md.
 */
import { describe } from './errors.js';
import type { FetcherDeps, FetchRequest, Submitted } from './fetcher.js';
import { urlBasename } from './naming.js';
import { keys } from './object-keys.js';
import type { PointerRecord } from './records.js';
import { getJson } from '../storage/object-store.js';

/**
 * A "set" with more members is not a respin set but a flat directory of unrelated names (names fetched as
 * `{name, url}` straight under `boot/`, say): never revalidated together, never held.
 */
export const MAX_SET_MEMBERS = 16;

/**
 * The prefix a name was published under (DESIGN.md "Names"): the name minus `-<basename>`, or minus `<basename>`
 * when the prefix ended with `/`. Null when the name is its basename (no prefix: a set of its own), and when the
 * basename is not the URL's file name: a name chosen by the caller (`{name, url}` on the native API) was not made
 * from a prefix, so it belongs to no set (regression: every such name straight under `boot/` formed one "set", and a
 * change of one revalidated all the others).
 */
export function setPrefixOf(name: string, basename: string, url: string): string | null {
  if (!namedFromUrl(basename, url)) return null;
  if (name.endsWith(`/${basename}`)) return name.slice(0, name.length - basename.length);
  if (name.endsWith(`-${basename}`)) return name.slice(0, name.length - basename.length - 1);
  return null;
}

function namedFromUrl(basename: string, url: string): boolean {
  try {
    return urlBasename(url) === basename;
  } catch {
    return false;
  }
}

/** The store-key prefix under which the heads of a set's names are found. */
const namesPrefix = (prefix: string) => (prefix.endsWith('/') ? prefix : `${prefix}-`);

/** The other published members of `name`'s set, from their head hints (a hint a generation behind has the same URL). */
export async function setSiblings(
  store: FetcherDeps['store'],
  name: string,
  prefix: string,
): Promise<PointerRecord[] | null> {
  const under = namesPrefix(prefix);
  const page = await store.list(keys.headsPrefix + under, { limit: 4 * MAX_SET_MEMBERS });
  const names = page.keys
    .filter((key) => keys.isHead(key))
    .map((key) => keys.nameFromHead(key))
    .filter((n) => n !== name && !n.slice(under.length).includes('/'));
  if (page.cursor !== undefined || names.length >= MAX_SET_MEMBERS) return null;
  const records = await Promise.all(names.map((n) => getJson<PointerRecord>(store, keys.head(n))));
  return records.filter((r): r is PointerRecord => r !== null && setPrefixOf(r.name, r.basename, r.url) === prefix);
}

/**
 * The request that revalidates a published name exactly as it was fetched: `{prefix, path}` gives back the same name
 * and basename for a `-` prefix; a `/` prefix (or a name fetched as `{name, url}`) keeps its last segment either way.
 */
function requestFor(record: PointerRecord, prefix: string): FetchRequest {
  return prefix.endsWith('/') ? { name: record.name, url: record.url } : { prefix, path: record.url };
}

/** Recorded URLs have their password replaced (core/redact.ts): such a URL cannot be asked again from here. */
function redacted(url: string): boolean {
  try {
    return new URL(url).password === '***';
  } catch {
    return true;
  }
}

/**
 * `deps` with the hook the fetch job calls when upstream changed for a published name (JobDeps.onUpstreamChange):
 * the set's other members are submitted; errors are logged, never thrown. A member's own change found by the
 * revalidation the set started does not trigger the set again (no storm): the set has been asked already.
 */
export function withRespinSets<D extends FetcherDeps>(deps: D, submit: (r: FetchRequest) => Promise<Submitted>): D {
  if (deps.onUpstreamChange) return deps;
  /** Names whose revalidation a set trigger started and which has not ended yet. */
  const asking = new Set<string>();
  /** Settles once every other member is accepted (its `fetching` record written), not when it is fetched. */
  const trigger = async (name: string, prefix: string): Promise<void> => {
    const siblings = await setSiblings(deps.store, name, prefix);
    if (siblings === null) {
      deps.logger.debug('respin set too large to revalidate together', { name, prefix });
      return;
    }
    const asked = siblings.filter((s) => !redacted(s.url) && !asking.has(s.name));
    if (asked.length === 0) return;
    deps.logger.info('respin: revalidating the rest of the set', { name, prefix, members: asked.map((s) => s.name) });
    for (const s of asked) asking.add(s.name);
    await Promise.all(
      asked.map(async (s) => {
        try {
          const submitted = await submit(requestFor(s, prefix));
          void submitted.done.finally(() => asking.delete(s.name));
        } catch (err) {
          asking.delete(s.name);
          deps.logger.warn('respin: revalidating a set member failed', { name: s.name, error: describe(err) });
        }
      }),
    );
  };
  const onUpstreamChange = (name: string, basename: string, url: string): Promise<void> | undefined => {
    const prefix = setPrefixOf(name, basename, url);
    if (prefix === null || asking.has(name)) return undefined;
    return trigger(name, prefix).catch((err: unknown) =>
      deps.logger.warn('respin: reading the set failed', { name, prefix, error: describe(err) }),
    );
  };
  return { ...deps, onUpstreamChange };
}
