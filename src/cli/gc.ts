import { stat } from 'node:fs/promises';
import type { GcConfig } from '../core/config.js';
import { ConfigError } from '../core/errors.js';
import { systemClock } from '../core/ports.js';
import { collectGarbage, type GcItem } from '../core/store-gc.js';
import { s3TimeoutsOf } from '../runtime/node/writer-store.js';
import { openStore } from '../storage/store-url.js';
import { EXIT_OK } from './exit.js';

type Out = (line: string) => void;

/**
 * `pxecache gc`: one GC run over the store (core/store-gc.ts), one line per object that goes or waits, then the
 * totals. Exit 0 once the run completed, whatever it found; a failure (an unreadable record) is exit 1 and deletes
 * nothing it has not re-checked.
 */
export async function runGc(config: GcConfig, out: Out): Promise<number> {
  const dryRun = config['dry-run'];
  const { store, description, directory } = await openStore(config.store, 'store', {
    probe: false,
    s3Timeouts: s3TimeoutsOf(config),
    // Opening a file store removes a dead writer's stale temps: not on a dry run, which changes nothing.
    ...(dryRun ? { staleWriteMs: Number.POSITIVE_INFINITY } : {}),
  });
  // A mistyped path would otherwise read as an empty store: "0 names, nothing to delete", exit 0.
  if (directory !== null && !(await isDirectory(directory)))
    throw new ConfigError([`--store: ${directory} is not a directory (no store there to collect)`]);
  const now = systemClock.now();
  const report = await collectGarbage(store, { graceMs: config.grace * 1000, dryRun, clock: systemClock });
  const verb = dryRun ? 'would delete' : 'deleted';
  for (const item of report.deleted) out(`${verb.padEnd(12)} ${describeItem(item)}, ${why(item, now)}`);
  for (const item of report.waiting)
    out(`${'waiting'.padEnd(12)} ${describeItem(item)}, ${why(item, now)}, goes after ${item.dueAt}`);
  const blobs = report.deleted.filter((i) => i.kind === 'blob').length;
  const data = report.deleted.length - blobs;
  out(
    `${description}: ${report.names} names, ${report.configs} boot configs, ${report.blobs} blobs, ` +
      `${report.dataObjects} data objects; ${verb} ${report.deleted.length} objects (${blobs} blob indexes, ` +
      `${data} data objects, ${report.bytes} bytes); ${report.waiting.length} waiting (grace ${config.grace} s)` +
      `${report.rescued ? `; ${report.rescued} referenced again on re-check, kept` : ''}` +
      `${dryRun ? '; dry run: nothing changed' : ''}`,
  );
  return EXIT_OK;
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (st) => st.isDirectory(),
    () => false,
  );
}

function describeItem(item: GcItem): string {
  return item.kind === 'blob'
    ? `blob ${item.sha256 ?? ''} (${item.size} bytes)`
    : `data ${item.key} (${item.size} bytes)`;
}

function why(item: GcItem, now: number): string {
  const since = `since ${item.since} (${age(now - Date.parse(item.since))})`;
  if (item.kind === 'blob') return `unreferenced ${since}`;
  if (item.sha256) return `data of blob ${item.sha256}, unindexed ${since}`;
  return `orphan data (no index, no record) ${since}`;
}

/** `3d 2h`, `5h 3m`, `42s`: how long a candidate has been unreferenced. */
function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const [d, h, m] = [Math.floor(s / 86_400), Math.floor((s % 86_400) / 3600), Math.floor((s % 3600) / 60)];
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return m > 0 ? `${m}m ${s % 60}s` : `${s}s`;
}
