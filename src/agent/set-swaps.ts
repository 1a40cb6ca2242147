/**
 * The renames of one pass, set by set: the links of a respin set (the names of one prefix, core/respin-sets.ts) are
 * renamed back to back, the sets a hold asks to wait are left for a later pass, and each set's window, from the start
 * of its first rename to the end of its last, is measured with the monotonic high-resolution clock.
 */
import { setPrefixOf } from '../core/respin-sets.js';
import type { CatalogEntry } from '../core/records.js';
import type { LinkSwap } from './activate.js';
import type { PendingSet } from './set-hold.js';
import type { SetSwap } from './set-swap-metrics.js';

export interface PreparedSwap {
  readonly entry: CatalogEntry;
  readonly swap: LinkSwap;
}

export interface CommitOptions {
  /** Which sets wait (agent/set-hold.ts); absent: none. */
  readonly hold?: (sets: readonly PendingSet[], signal?: AbortSignal) => Promise<ReadonlySet<string>>;
  readonly signal?: AbortSignal;
  readonly committed: (item: PreparedSwap) => void;
  readonly failed: (item: PreparedSwap, err: unknown) => void;
}

export interface CommitResult {
  readonly setSwaps: readonly SetSwap[];
  /** Entries whose (prepared, then abandoned) swap waits for a later pass. */
  readonly held: readonly CatalogEntry[];
}

export async function commitBySet(swaps: readonly PreparedSwap[], opts: CommitOptions): Promise<CommitResult> {
  // Grouped in first-appearance order; names without a prefix are each a group of their own.
  const groups = new Map<string, { prefix: string | null; items: PreparedSwap[] }>();
  for (const item of swaps) {
    const prefix = setPrefixOf(item.entry.name, item.entry.basename, item.entry.url);
    const key = prefix ?? `\u0000${item.entry.name}`;
    const group = groups.get(key) ?? { prefix, items: [] };
    group.items.push(item);
    groups.set(key, group);
  }
  const moving = (items: readonly PreparedSwap[]) =>
    items.filter((i) => i.swap.outcome !== 'unchanged').sort((a, b) => bootOrder(a.entry) - bootOrder(b.entry));
  const pending: PendingSet[] = [];
  for (const { prefix, items } of groups.values()) {
    const names = moving(items).map((i) => i.entry.name);
    if (prefix !== null && names.length > 0) pending.push({ prefix, names });
  }
  let heldSets: ReadonlySet<string> = new Set();
  try {
    if (opts.hold) heldSets = await opts.hold(pending, opts.signal);
  } catch (err) {
    for (const item of swaps) await item.swap.abort();
    throw err;
  }

  const setSwaps: SetSwap[] = [];
  const held: CatalogEntry[] = [];
  for (const { prefix, items } of groups.values()) {
    if (prefix !== null && heldSets.has(prefix)) {
      for (const item of items) {
        await item.swap.abort();
        if (item.swap.outcome !== 'unchanged') held.push(item.entry);
      }
      continue;
    }
    const renamed: string[] = [];
    const failures: [PreparedSwap, unknown][] = [];
    const todo = moving(items);
    // Nothing but the renames between the two clock readings, and no await: nothing else runs in between.
    const start = process.hrtime.bigint();
    for (const item of todo) {
      try {
        item.swap.commitSync();
        renamed.push(item.entry.name);
      } catch (err) {
        failures.push([item, err]);
      }
    }
    const end = process.hrtime.bigint();
    for (const item of todo) if (renamed.includes(item.entry.name)) opts.committed(item);
    for (const [item, err] of failures) {
      await item.swap.abort();
      opts.failed(item, err);
    }
    if (prefix !== null && renamed.length > 0) setSwaps.push({ prefix, names: renamed, windowNs: Number(end - start) });
  }
  return { setSwaps, held };
}

/**
 * Renames in the order a PXE client reads the files (bootloader, kernel, initrd): a client that opens one file
 * between two renames then gets the new version of every later file, whereas the reverse order could hand it an old
 * kernel followed by a new initrd. Other names keep their order (a stable sort) between the kernel and the initrd.
 */
function bootOrder(entry: CatalogEntry): number {
  const base = entry.basename.toLowerCase();
  if (/^(shim|grub|pxelinux|lpxelinux|boot[a-z0-9]*\.efi|ipxe)/.test(base)) return 0;
  if (/^(initrd|initramfs)/.test(base)) return 2;
  return 1;
}
