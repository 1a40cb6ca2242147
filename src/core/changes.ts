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
