/**
 * Holding a respin set: when a pass would move the links of some members of a set (core/respin-sets.ts) while another
 * member is still `fetching` at the source, the fetcher is most likely downloading that member's new version (a
 * respin found by one job revalidates the whole set). Moving the ready links now would serve a new kernel with the
 * old initrd until the rest arrives, so the set's swaps wait, at most `holdMs` from the first pass that held them,
 * and then move together. The bytes are downloaded meanwhile: only the renames wait.
 */
import { describe } from '../core/errors.js';
import type { Clock, Logger } from '../core/ports.js';
import { MAX_SET_MEMBERS } from '../core/respin-sets.js';
import type { SetSwapMetrics } from './set-swap-metrics.js';
import type { CatalogSource } from './source.js';

/** A set with links to move in this pass. */
export interface PendingSet {
  readonly prefix: string;
  /** The names whose links would move. */
  readonly names: readonly string[];
}

export interface SetHoldOptions {
  readonly source: CatalogSource;
  /** 0 disables holding. */
  readonly holdMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Every published name of a set, with the version the agent's catalog view has for it. */
  readonly members: (prefix: string) => readonly { readonly name: string; readonly version: string }[];
  readonly metrics?: SetSwapMetrics;
}

export interface SetHold {
  /** The prefixes whose swaps wait for the next pass; `sets` are all the sets this pass would move. */
  decide(sets: readonly PendingSet[], signal?: AbortSignal): Promise<ReadonlySet<string>>;
}

export function createSetHold(opts: SetHoldOptions): SetHold {
  const { source, holdMs, clock, logger } = opts;
  /** When each held set was first held. */
  const since = new Map<string, number>();

  async function fetchingMembers(set: PendingSet, signal?: AbortSignal): Promise<string[] | null> {
    const all = opts.members(set.prefix);
    if (all.length > MAX_SET_MEMBERS) return [];
    // Only the others: a name being moved is published, though its status may say `fetching` for a moment longer
    // (the fetcher writes the pointer, then the status) or again (the next revalidation).
    const others = all.filter((member) => !set.names.includes(member.name));
    try {
      const states = await Promise.all(others.map((member) => source.fileState(member.name, signal)));
      // Pending: still fetching, or published already in a version the view has not caught up with (its change
      // arrives with the next poll; swapping now would move this pass's members without it).
      return others
        .filter((member, i) => {
          const at = states[i];
          return at?.state === 'fetching' || (at?.version != null && at.version !== member.version);
        })
        .map((member) => member.name);
    } catch (err) {
      signal?.throwIfAborted();
      // Not knowing must not stop a publication: the set swaps as if nothing were fetching.
      logger.warn('agent: set members state unknown; swapping without holding', {
        prefix: set.prefix,
        error: describe(err),
      });
      return null;
    }
  }

  async function decide(sets: readonly PendingSet[], signal?: AbortSignal): Promise<ReadonlySet<string>> {
    const held = new Set<string>();
    if (holdMs <= 0) return held;
    // A held set with nothing left to move (its pending version withdrawn, say) is no longer held.
    for (const prefix of since.keys()) if (!sets.some((s) => s.prefix === prefix)) since.delete(prefix);
    await Promise.all(
      sets.map(async (set) => {
        const fetching = await fetchingMembers(set, signal);
        const first = since.get(set.prefix);
        const now = clock.now();
        if (fetching !== null && fetching.length > 0) {
          if (first === undefined) {
            since.set(set.prefix, now);
            logger.info('agent: holding a set until its members are fetched', { ...set, fetching });
          }
          const heldMs = now - (first ?? now);
          if (heldMs < holdMs) {
            held.add(set.prefix);
            return;
          }
          logger.warn('agent: set hold expired; swapping what is ready', { ...set, fetching, heldMs });
          opts.metrics?.holdEnded('expired');
        } else if (first !== undefined) {
          logger.info('agent: set complete; swapping', { ...set, heldMs: now - first });
          opts.metrics?.holdEnded('complete');
        }
        since.delete(set.prefix);
      }),
    );
    return held;
  }

  return { decide };
}
