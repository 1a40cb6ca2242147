/**
 * PXE clients looping real tftp-hpa reads over several served names while an agent is started and killed. Every
 * complete read must hash to a version published for its name. While the agent is dead the root cannot change, so
 * the harness may `freeze` it with what each link serves: a read spawned after the freeze and finished before the
 * next `thaw` must then be exactly that version (the file tftpd opened was the linked one, not some other published
 * version). Free of vitest imports.
 */
import { tftpFetch } from '../helpers/tftp.js';
import { sha256, type Published } from './edge-check.js';

export interface NameReaders {
  /** Complete reads whose bytes were checked. */
  checked(): number;
  /** Of those, reads checked against a frozen root. */
  frozenChecked(): number;
  /** Complete reads that were no published version, or not the frozen one (the first 50 described). */
  readonly bad: string[];
  badCount(): number;
  /** Reads that did not complete (tftp error, timeout, short file): a missing or dangling link shows here. */
  readonly failed: string[];
  failedCount(): number;
  freeze(serving: ReadonlyMap<string, string>): void;
  thaw(): void;
  /** Resolves once every reader completed a read spawned after this call; rejects after `timeoutMs`. */
  fresh(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const MAX_RECORDED = 50;

export function startNameReaders(opts: {
  port: number;
  names: readonly string[];
  readers: number;
  published: Published;
}): NameReaders {
  let stopped = false;
  let checked = 0;
  let frozenChecked = 0;
  let frozen: ReadonlyMap<string, string> | null = null;
  /** Bumped by freeze and thaw: a read checks against `frozen` only if no bump happened while it ran. */
  let freezeGen = 0;
  let round = 0;
  const done = Array.from({ length: opts.readers }, () => -1);
  const bad: string[] = [];
  const failed: string[] = [];
  const record = (list: string[], line: string) => void (list.length < MAX_RECORDED && list.push(line));
  // The counts stay exact when the lists stop growing.
  let badCount = 0;
  let failedCount = 0;

  const loop = async (id: number) => {
    for (let k = id; !stopped; k++) {
      const name = opts.names[k % opts.names.length] as string;
      const [gen, expect, spawnedRound] = [freezeGen, frozen?.get(name), round];
      const r = await tftpFetch(opts.port, name).catch((err: Error) => ({ ok: false as const, reason: err.message }));
      if (!r.ok) {
        failedCount++;
        record(failed, `reader ${id} ${name}: ${r.reason}`);
        await new Promise((res) => setTimeout(res, 100)); // no spinning on a dead server
      } else {
        checked++;
        const sha = sha256(r.bytes);
        if (!opts.published.get(name)?.has(sha)) {
          badCount++;
          record(bad, `reader ${id} ${name}: ${r.bytes.byteLength} bytes hashing to ${sha}, no published version`);
        } else if (expect !== undefined && gen === freezeGen) {
          frozenChecked++;
          if (sha !== expect) {
            badCount++;
            record(bad, `reader ${id} ${name}: read ${sha} while the root was frozen serving ${expect}`);
          }
        }
      }
      done[id] = spawnedRound;
    }
  };
  const loops = Array.from({ length: opts.readers }, (_, id) => loop(id));

  return {
    checked: () => checked,
    frozenChecked: () => frozenChecked,
    bad,
    badCount: () => badCount,
    failed,
    failedCount: () => failedCount,
    freeze(serving) {
      frozen = new Map(serving);
      freezeGen++;
    },
    thaw() {
      frozen = null;
      freezeGen++;
    },
    async fresh(timeoutMs = 60_000) {
      const want = ++round;
      const deadline = Date.now() + timeoutMs;
      while (done.some((r) => r < want)) {
        if (Date.now() > deadline) {
          throw new Error(
            `TFTP readers did not each complete a fresh read within ${timeoutMs} ms (rounds ${done.join(', ')}, ` +
              `want ${want}; failures: ${failed.slice(-3).join(' | ') || 'none'})`,
          );
        }
        await new Promise((res) => setTimeout(res, 20));
      }
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}
