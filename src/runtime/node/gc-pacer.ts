import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Bytes of streamed body between two young-generation collections. */
const PACE_BYTES = 16 * 1024 * 1024;

type Collect = (options: { type: 'minor' }) => void;
let collect: Collect | null | undefined;

/**
 * Frees the chunks a stream has finished with, every PACE_BYTES of body. Socket reads arrive as fresh Buffers whose
 * bytes live outside V8's heap: a young-generation collection is what frees them, and V8 starts one after about 1 MiB
 * of *heap* allocation, which a 64 KiB chunk barely makes (~1 KiB of objects), so up to ~64 MiB of spent chunks could
 * pile up between two collections. A minor collection costs well under a millisecond here.
 */
export function createGcPacer(): (bytes: number) => void {
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < PACE_BYTES) return;
    since = 0;
    collectYoung();
  };
}

function collectYoung(): void {
  if (collect === undefined) {
    // The function `gc` of a fresh context collects the whole isolate: nothing is exposed to pxecache's own globals.
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('typeof gc === "function" ? gc : null');
    collect = typeof gc === 'function' ? (gc as Collect) : null;
  }
  collect?.({ type: 'minor' });
}
