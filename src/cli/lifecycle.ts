import type { RollbackConfig, UnpinConfig } from '../core/config.js';
import { systemClock, type Logger } from '../core/ports.js';
import { rollback, unpin, type Fields, type LifecycleResult } from '../core/rollback.js';
import { openWriterStore } from '../runtime/node/writer-store.js';
import { EXIT_OK } from './exit.js';

type Out = (line: string) => void;

/** Errors name the flags as typed: the target is the operand (or --target). */
const CLI_FIELDS: Fields = { target: 'target', to: '--to' };

/** `pxecache rollback <name|prefix> [--to <version>]`: one line per name moved; refusals exit 1, bad input 2. */
export async function runRollback(config: RollbackConfig, logger: Logger, out: Out): Promise<number> {
  const { store } = await openWriterStore(config, logger);
  const to = config.to === undefined ? {} : { to: config.to };
  const results = await rollback(store, systemClock, config.target, { ...to, fields: CLI_FIELDS });
  for (const r of results) out(describeResult(r));
  return EXIT_OK;
}

/** `pxecache unpin <name|prefix>`: names that were not pinned are reported and left alone (still exit 0). */
export async function runUnpin(config: UnpinConfig, logger: Logger, out: Out): Promise<number> {
  const { store } = await openWriterStore(config, logger);
  const results = await unpin(store, systemClock, config.target, {
    fields: CLI_FIELDS,
    keep: config['keep-versions'],
  });
  for (const r of results) out(describeResult(r));
  return EXIT_OK;
}

const NOTES: Record<LifecycleResult['outcome'], string> = {
  pinned: 'pinned until "pxecache unpin"',
  unpinned: 'unpinned; nothing held: the next revalidation publishes what upstream serves',
  'published-held': 'unpinned; the version held while pinned is current',
  'not-pinned': 'not pinned: nothing changed',
};

export function describeResult(r: LifecycleResult): string {
  if (r.outcome === 'not-pinned') return `${r.name}: ${r.from}, generation ${r.record.generation}, ${NOTES[r.outcome]}`;
  return `${r.name}: ${r.from} -> ${r.record.version}, generation ${r.record.generation}, ${NOTES[r.outcome]}`;
}
