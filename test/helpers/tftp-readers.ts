/**
 * PXE clients hammering one TFTP name while the test moves it: parallel loops of the real tftp-hpa client. Each read
 * is stamped with the epoch current when its client was spawned; the test bumps the epoch right after it has seen a
 * link move, so "a read spawned at epoch n" is a read whose open(2) in tftpd happened after move n.
 */
import { tftpFetch } from './tftp.js';

export interface ReaderPool {
  /** Reads completed so far, failed ones included. */
  reads(): number;
  /** Reads that did not complete (tftp error, timeout, short file). Must stay empty. */
  readonly failures: string[];
  /** Complete reads whose bytes `check` rejected. Must stay empty. */
  readonly problems: string[];
  /** Reads spawned from now on carry epoch `n`. */
  setEpoch(n: number): void;
  /** Resolves once every reader has completed a read spawned at the current epoch or later. */
  waitForFreshReads(what: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface ReaderOptions {
  readonly port: number;
  readonly remote: string;
  readonly readers: number;
  /** Null when the bytes are acceptable for a read spawned at `epoch`, else why not. */
  readonly check: (bytes: Buffer, epoch: number) => string | null;
}

/** Cap on recorded messages: a dead server must not grow the lists without bound before the test notices. */
const MAX_RECORDED = 100;

export function startReaders(opts: ReaderOptions): ReaderPool {
  let epoch = 0;
  let stopped = false;
  let reads = 0;
  const failures: string[] = [];
  const problems: string[] = [];
  /** Per reader: the epoch of its last completed read, -1 before the first. */
  const lastEpoch = Array.from({ length: opts.readers }, () => -1);
  const record = (list: string[], message: string) => void (list.length < MAX_RECORDED && list.push(message));

  const loop = async (id: number) => {
    while (!stopped) {
      const spawnedAt = epoch;
      let failed = false;
      try {
        const r = await tftpFetch(opts.port, opts.remote);
        if (r.ok) {
          const problem = opts.check(r.bytes, spawnedAt);
          if (problem !== null) record(problems, `reader ${id}, epoch ${spawnedAt}: ${problem}`);
        } else {
          failed = true;
          record(failures, `reader ${id}, epoch ${spawnedAt}: ${r.reason}`);
        }
      } catch (err) {
        failed = true;
        record(failures, `reader ${id}, epoch ${spawnedAt}: ${(err as Error).message}`);
      }
      reads++;
      lastEpoch[id] = spawnedAt;
      // Do not spin on a dead server; successful reads loop back at once to keep the pressure on.
      if (failed) await new Promise((r) => setTimeout(r, 100));
    }
  };
  const loops = Array.from({ length: opts.readers }, (_, id) => loop(id));

  return {
    reads: () => reads,
    failures,
    problems,
    setEpoch(n) {
      epoch = n;
    },
    async waitForFreshReads(what, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (lastEpoch.some((e) => e < epoch)) {
        if (Date.now() > deadline) {
          throw new Error(
            `timed out after ${timeoutMs} ms waiting for every TFTP reader to complete a read of ${opts.remote} ` +
              `spawned after ${what} (epoch ${epoch}; last completed epochs ${lastEpoch.join(', ')}; ` +
              `failures so far: ${failures.slice(0, 3).join(' | ') || 'none'})`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}
