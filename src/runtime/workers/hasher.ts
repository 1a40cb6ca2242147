import type { Hasher, HasherFactory } from '../../core/ports.js';

/**
 * A streaming hash on crypto.DigestStream: each chunk is written into the stream, which keeps only the hash state once
 * it has consumed the chunk (crypto.subtle.digest would need the whole input in one buffer). The stream consumes
 * writes later, not inside `write()` (in workerd, a buffer changed right after `write` changed the digest), so
 * `update` writes a copy: the caller may reuse its buffer, as a network reader does. Queued copies drain whenever the
 * caller awaits (its next read), so at most the chunks of one synchronous burst wait in the queue.
 */
const workersDigest =
  (algorithm: 'SHA-256' | 'MD5'): HasherFactory =>
  (): Hasher => {
    const stream = new crypto.DigestStream(algorithm);
    const writer = stream.getWriter();
    // A failed write is reported by `digest()`, not as an unhandled rejection.
    let failure: { error: unknown } | undefined;
    return {
      update(chunk) {
        writer.write(chunk.slice()).catch((error: unknown) => void (failure ??= { error }));
      },
      async digest() {
        await writer.close();
        if (failure !== undefined) throw failure.error;
        return toHex(new Uint8Array(await stream.digest));
      },
    };
  };

export const workersSha256 = workersDigest('SHA-256');
/** Only to check media that publish nothing but `MD5SUMS` (workerd's DigestStream supports MD5). */
export const workersMd5 = workersDigest('MD5');

function toHex(bytes: Uint8Array): string {
  let hex = '';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  return hex;
}
