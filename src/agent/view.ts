/**
 * The agent's merged copy of what it follows: every published name and every boot config of its site, kept current
 * from the change feed's deltas, and what of it still has to be applied to the root (changed since the last pass,
 * or failed in it). A pass applies only that, so a change to one of 10,000 names touches one name at the edge; a
 * full snapshot (start, `complete`, periodic resync) replaces the view and marks everything.
 */
import type { CatalogEntry, Changes, ConfigEntry } from '../core/records.js';

type Pending = Set<string> | 'all';

export interface CatalogView {
  /** The feed position the view is at; `null` before the first snapshot. */
  readonly cursor: string | null;
  /** Merges one answer of the feed. `withConfigs: false` when the site's configs were not part of it. */
  merge(changes: Changes, withConfigs: boolean): void;
  /** The view with `changes` merged into a copy, for a read-only check. */
  peek(changes: Changes | 'not-modified', withConfigs: boolean): { files: CatalogEntry[]; configs: ConfigEntry[] };
  /** Entries to apply now, or null when nothing is pending. */
  filesDue(): CatalogEntry[] | null;
  configsDue(): ConfigEntry[] | null;
  /**
   * After a pass: only what failed, and what a respin set's hold kept back, stays pending (`'all'` when the whole
   * pass must be redone).
   */
  filesApplied(failed: readonly string[], held?: readonly string[]): void;
  configsApplied(failed: readonly string[] | 'all'): void;
  /** Nothing pending but held names: no failure to retry. */
  readonly filesClean: boolean;
}

export function createCatalogView(): CatalogView {
  let cursor: string | null = null;
  let files = new Map<string, CatalogEntry>();
  let configs = new Map<string, ConfigEntry>();
  let pendingFiles: Pending = new Set();
  let heldFiles = new Set<string>();
  let pendingConfigs: Pending = new Set();

  const add = (pending: Pending, keys: Iterable<string>): Pending => {
    if (pending === 'all') return pending;
    for (const k of keys) pending.add(k);
    return pending;
  };
  // In view order (first snapshot order, then first appearance), whatever order the changes came in.
  const due = <T>(map: Map<string, T>, pending: Pending): T[] | null => {
    if (pending !== 'all' && pending.size === 0) return null;
    return [...map].filter(([k]) => pending === 'all' || pending.has(k)).map(([, v]) => v);
  };
  function merged(changes: Changes, withConfigs: boolean) {
    const f = changes.complete ? new Map<string, CatalogEntry>() : new Map(files);
    for (const e of changes.files) f.set(e.name, e);
    if (!withConfigs) return { files: f, configs };
    const c = changes.complete ? new Map<string, ConfigEntry>() : new Map(configs);
    for (const e of changes.configs) c.set(e.path, e);
    return { files: f, configs: c };
  }

  return {
    get cursor() {
      return cursor;
    },
    merge(changes, withConfigs) {
      ({ files, configs } = merged(changes, withConfigs));
      cursor = changes.cursor;
      pendingFiles = changes.complete
        ? 'all'
        : add(
            pendingFiles,
            changes.files.map((e) => e.name),
          );
      if (withConfigs)
        pendingConfigs = changes.complete
          ? 'all'
          : add(
              pendingConfigs,
              changes.configs.map((e) => e.path),
            );
    },
    peek(changes, withConfigs) {
      const view = changes === 'not-modified' ? { files, configs } : merged(changes, withConfigs);
      return { files: [...view.files.values()], configs: [...view.configs.values()] };
    },
    filesDue: () => due(files, pendingFiles),
    configsDue: () => due(configs, pendingConfigs),
    filesApplied(failed, held = []) {
      pendingFiles = new Set([...failed, ...held]);
      heldFiles = new Set(held);
    },
    configsApplied(failed) {
      pendingConfigs = failed === 'all' ? 'all' : new Set(failed);
    },
    get filesClean() {
      return pendingFiles !== 'all' && [...pendingFiles].every((name) => heldFiles.has(name));
    },
  };
}
