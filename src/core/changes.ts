import { currentCursor } from './events.js';
import { sleep } from './ports.js';
import type { ObjectStore } from '../storage/object-store.js';

/**
 * In-process wake-up for long-polls: fired when this process publishes a version or writes a boot config, so the
 * catalog long-polls and the in-process agent react at once instead of at their next poll. Other processes sharing
 * the store are seen by polling.
 */
export interface ChangeSignal {
  /** Resolves at the next `fire()`, or when `signal` aborts. */
  next(signal?: AbortSignal): Promise<void>;
  fire(): void;
}

export function createChangeSignal(): ChangeSignal {
  let waiters: (() => void)[] = [];
  return {
    next(signal) {
      return new Promise((resolve) => {
        if (signal?.aborted) return resolve();
        waiters.push(resolve);
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    },
    fire() {
      const woken = waiters;
      waiters = [];
      for (const wake of woken) wake();
    },
  };
}

/**
 * Wakes long-polls when the change log moves, with one store poll per process however many requests wait: every
 * `pollMs` while anyone waits (publications by other processes sharing the store), and at once on `wake` (this
 * process published). A waiter is released when the head passes the cursor it knows, when its time is up, or on abort.
 */
export interface HeadWatch {
  next(known: number, timeoutMs: number, signal?: AbortSignal): Promise<void>;
}

interface Waiter {
  readonly known: number;
  readonly release: () => void;
}

export function createHeadWatch(opts: {
  store: ObjectStore;
  pollMs: number;
  wake?: (signal: AbortSignal) => Promise<void>;
}): HeadWatch {
  const waiters = new Set<Waiter>();
  let looping = false;
  let pause: AbortController | null = null;

  async function loop(): Promise<void> {
    looping = true;
    let subscription = new AbortController();
    let fired = false;
    const subscribe = () => {
      // A fresh controller each time: the signal's listeners then go away with it instead of piling up.
      subscription = new AbortController();
      fired = false;
      return (opts.wake?.(subscription.signal) ?? new Promise<void>(() => {})).then(() => void (fired = true));
    };
    let wake = subscribe();
    try {
      while (waiters.size > 0) {
        pause = new AbortController();
        await Promise.race([sleep(opts.pollMs, pause.signal), wake]);
        pause.abort();
        if (waiters.size === 0) break;
        // Subscribed again (once used) before the read: a publication landing during the read wakes the next round.
        if (fired) wake = subscribe();
        let head: number | null = null;
        try {
          head = await currentCursor(opts.store);
        } catch {
          // Not swallowed: every waiter goes back to its own read, which reports the store's error to its caller.
        }
        // "Past what the waiter knows", not "changed since the last poll": a waiter that registered just after a
        // poll saw the change is still released by the next one.
        for (const w of waiters) if (head === null || head > w.known) w.release();
      }
    } finally {
      subscription.abort();
      looping = false;
      pause = null;
    }
  }

  return {
    next(known, timeoutMs, signal) {
      return new Promise<void>((resolve) => {
        if (signal?.aborted) return resolve();
        const timer = setTimeout(() => waiter.release(), timeoutMs);
        const waiter: Waiter = {
          known,
          release() {
            clearTimeout(timer);
            signal?.removeEventListener('abort', waiter.release);
            waiters.delete(waiter);
            // Nobody left: stop the poll instead of keeping a timer alive for nothing.
            if (waiters.size === 0) pause?.abort();
            resolve();
          },
        };
        waiters.add(waiter);
        signal?.addEventListener('abort', waiter.release, { once: true });
        if (!looping) void loop();
      });
    },
  };
}
