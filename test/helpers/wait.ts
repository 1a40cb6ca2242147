/**
 * Bounded polling for conditions reached asynchronously (a background fetch finishing). The interval is only a
 * polling cadence, never an assertion: tests assert on the state they waited for, and a bound that runs out fails
 * with the last value seen.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<{ done: boolean; value: T }>,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const intervalMs = opts.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { done, value } = await probe();
    if (done) return value;
    if (Date.now() >= deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A promise the test settles by hand: upstream gates, held responses. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
