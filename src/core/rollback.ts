import { ConflictError, InputError, NotFoundError } from './errors.js';
import { validateName } from './naming.js';
import { keys } from './object-keys.js';
import { announce, latestPointer, writeNext } from './pointers.js';
import type { Clock } from './ports.js';
import type { PointerRecord, StatusRecord, VersionEntry } from './records.js';
import { getJson, listAll, type ObjectStore } from '../storage/object-store.js';

/**
 * Rollback with pins (DESIGN.md principle 1): an operator moves a name's pointer back to a kept version and pins it
 * there. The move is the next generation of the pointer log, written create-only like a publication, so agents
 * follow it through the change feed like any other. While pinned, `publish()` refuses to move the pointer: a
 * revalidation that finds newer upstream bytes stores them and records them as the status's `held` version, which
 * `unpin` publishes.
 */

/** What happened to one name. */
export interface LifecycleResult {
  readonly name: string;
  /**
   * `pinned`: rolled back (or moved with `to`) and pinned; `unpinned`: the pin is gone, the version stays;
   * `published-held`: the pin is gone and the held version is current; `not-pinned`: nothing to unpin, nothing written.
   */
  readonly outcome: 'pinned' | 'unpinned' | 'published-held' | 'not-pinned';
  /** The version current before. */
  readonly from: string;
  /** The latest pointer record afterwards. */
  readonly record: PointerRecord;
}

/** How errors name the inputs: `target`/`to` for the API, `--to` for the CLI. */
export interface Fields {
  readonly target: string;
  readonly to: string;
}
const API_FIELDS: Fields = { target: 'target', to: 'to' };

/**
 * `target` is a published name, or else a prefix as Foreman sends it: the names fetched under it, i.e. those whose
 * name is `prefix + "-" + basename` (`prefix + basename` when it ends with "/"), kernel and initrd together.
 */
export async function publishedUnder(store: ObjectStore, target: string, field = 'target'): Promise<PointerRecord[]> {
  const bare = target.endsWith('/') ? target.slice(0, -1) : target;
  validateName(bare, field);
  const own = bare === target ? await latestPointer(store, target) : null;
  if (own) return [own];
  const start = bare === target ? `${target}-` : target;
  const found: PointerRecord[] = [];
  for await (const key of listAll(store, keys.headsStarting(start))) {
    if (!keys.isHead(key)) continue;
    const name = keys.nameFromHead(key);
    const basename = name.slice(start.length);
    if (basename.includes('/')) continue;
    // `boot/x-y-vmlinuz` starts with `boot/x-` but was fetched under `boot/x-y`: its basename tells.
    const record = await latestPointer(store, name);
    if (record?.basename === basename) found.push(record);
  }
  if (found.length === 0)
    throw new NotFoundError(`"${target}" is neither a published name nor a prefix any name was fetched under`);
  return found;
}

/**
 * Moves every name of `target` to its previous kept version (or, for a single name, to version `to`) and pins it.
 * Every name is checked before any is written: one without another kept version refuses the whole call.
 */
export async function rollback(
  store: ObjectStore,
  clock: Clock,
  target: string,
  opts: { readonly to?: string; readonly fields?: Fields } = {},
): Promise<LifecycleResult[]> {
  const fields = opts.fields ?? API_FIELDS;
  const members = await publishedUnder(store, target, fields.target);
  if (opts.to !== undefined && members.length > 1)
    throw new InputError(
      fields.to,
      `needs a single name; "${target}" is a prefix of ${members.length} names (${members.map((m) => m.name).join(', ')})`,
    );
  const at = new Date(clock.now()).toISOString();
  const move = (current: PointerRecord) => rolledBack(current, opts.to, at, fields);
  members.forEach(move); // throws for any name that cannot move, before one is written
  return moveAll(store, members, at, async (current) => ({ outcome: 'pinned', record: move(current) }));
}

/**
 * Removes the pin of every pinned name of `target`. A name whose status holds a newer version (found by a
 * revalidation while pinned) gets it published; otherwise its version stays, and the next revalidation publishes
 * whatever upstream serves then. Names not pinned are reported and left alone.
 */
export async function unpin(
  store: ObjectStore,
  clock: Clock,
  target: string,
  opts: { readonly fields?: Fields; readonly keep?: number } = {},
): Promise<LifecycleResult[]> {
  const members = await publishedUnder(store, target, (opts.fields ?? API_FIELDS).target);
  const at = new Date(clock.now()).toISOString();
  return moveAll(store, members, at, async (current) => {
    if (!current.pinned) return null;
    const status = await getJson<StatusRecord>(store, keys.status(current.name));
    return unpinned(current, status?.held ?? null, opts.keep);
  });
}

type Decision = { readonly outcome: LifecycleResult['outcome']; readonly record: PointerRecord } | null;

/**
 * Writes each member's next generation as `decide` says (null: leave it, `not-pinned`), then announces them all in
 * one change event, so an agent sees kernel and initrd move together. What was written is announced even when a
 * later member fails.
 */
async function moveAll(
  store: ObjectStore,
  members: readonly PointerRecord[],
  at: string,
  decide: (current: PointerRecord) => Promise<Decision>,
): Promise<LifecycleResult[]> {
  const results: LifecycleResult[] = [];
  const written: PointerRecord[] = [];
  try {
    for (const member of members) {
      let outcome: LifecycleResult['outcome'] = 'not-pinned';
      let from = member.version;
      const record = await writeNext<PointerRecord>(store, member.name, async (current) => {
        if (!current) throw new NotFoundError(`"${member.name}" is no longer published`);
        from = current.version;
        outcome = 'not-pinned'; // decided afresh on each attempt: a lost race reads a newer record
        const decision = await decide(current);
        if (!decision) return { stop: current };
        outcome = decision.outcome;
        return decision.record;
      });
      const latest = 'stop' in record ? record.stop : record;
      if (!('stop' in record)) written.push(record);
      results.push({ name: member.name, outcome, from, record: latest });
    }
  } finally {
    await announce(store, written, at);
  }
  return results;
}

function rolledBack(current: PointerRecord, to: string | undefined, at: string, fields: Fields): PointerRecord {
  const kept = current.versions.map((v) => v.version);
  const listing = `kept: ${kept.join(', ')}`;
  let entry: VersionEntry | undefined;
  if (to === undefined) {
    const index = kept.indexOf(current.version);
    entry = index < 0 ? undefined : current.versions[index + 1];
    if (!entry)
      throw new ConflictError(
        fields.target,
        `${current.name} has no kept version older than its current ${current.version} (${listing}); nothing changed`,
      );
  } else {
    entry = current.versions.find((v) => v.version === to);
    if (!entry) throw new InputError(fields.to, `"${to}" is not a kept version of ${current.name} (${listing})`);
  }
  return {
    ...entry,
    name: current.name,
    generation: current.generation + 1,
    // Validators belong to the bytes upstream last gave; the status keeps them (fetch-job.ts validatorsFor).
    etag: null,
    lastModified: null,
    // A job that started before the record this replaces stays superseded; any later one is held.
    startedAt: current.startedAt,
    versions: current.versions,
    pinned: { version: entry.version, at, reason: 'rollback' },
  };
}

function unpinned(current: PointerRecord, held: StatusRecord['held'], keep: number | undefined): Decision {
  const next = { generation: current.generation + 1, pinned: null };
  if (!held || held.sha256 === current.sha256) return { outcome: 'unpinned', record: { ...current, ...next } };
  const { etag, lastModified, ...entry } = held;
  const others = current.versions.filter((v) => v.version !== entry.version);
  // As publish() keeps them; without `keep` none is dropped (the next publication trims the list).
  const versions = [entry, ...others].slice(0, Math.max(2, keep ?? others.length + 1));
  const record = { ...entry, ...next, name: current.name, etag, lastModified, startedAt: current.startedAt, versions };
  return { outcome: 'published-held', record };
}
