/** S3's and R2's largest part count for one multipart upload. */
export const MAX_PARTS = 10_000;

export interface PartCutterOptions {
  /** Every part but the last has exactly this many bytes (S3 and R2 both require equal parts). */
  readonly partSize: number;
  /** A buffer of at least `partSize` bytes to fill next; may wait (for a free upload slot, a reused buffer). */
  readonly nextBuffer: () => Promise<Uint8Array>;
  /** A full part and its 1-based number. The cutter awaits it before asking for the next buffer. */
  readonly emit: (part: Uint8Array, partNumber: number) => void | Promise<void>;
  /** The option that raises `partSize`, named in the error for a body of more than `MAX_PARTS` parts. */
  readonly partSizeOption: string;
}

export interface PartCutter {
  /** Copies `chunk` into parts; the caller may reuse `chunk` once this resolves. */
  take(chunk: Uint8Array): Promise<void>;
  /**
   * The bytes not emitted yet: the last part (possibly full, possibly empty), how many parts came before it, and the
   * total so far. A full part is emitted only once a byte after it arrives, so the last part is always held back and
   * `emitted === 0` means the whole body fits in one part (a caller can then write it in one plain request).
   */
  rest(): { readonly last: Uint8Array; readonly emitted: number; readonly size: number };
}

/**
 * Cuts a byte stream into fixed-size parts by copying it into buffers the caller provides, so memory is the caller's
 * buffers and nothing else: the source's chunks are dropped as soon as they are copied.
 */
export function createPartCutter(opts: PartCutterOptions): PartCutter {
  const { partSize, nextBuffer, emit } = opts;
  let buffer: Uint8Array | undefined;
  let fill = 0;
  let emitted = 0;
  let size = 0;
  return {
    async take(chunk) {
      size += chunk.byteLength;
      for (let at = 0; at < chunk.byteLength;) {
        if (buffer !== undefined && fill === partSize) {
          // The byte at hand goes in part `emitted + 2` at least.
          if (emitted + 2 > MAX_PARTS) throw tooLarge(partSize, opts.partSizeOption);
          const full = buffer;
          buffer = undefined;
          fill = 0;
          await emit(full, ++emitted);
        }
        buffer ??= await nextBuffer();
        const n = Math.min(partSize - fill, chunk.byteLength - at);
        buffer.set(chunk.subarray(at, at + n), fill);
        fill += n;
        at += n;
      }
    },
    rest: () => ({ last: buffer === undefined ? new Uint8Array(0) : buffer.subarray(0, fill), emitted, size }),
  };
}

function tooLarge(partSize: number, option: string): Error {
  const mib = partSize / (1024 * 1024);
  return new Error(
    `the body exceeds ${MAX_PARTS} parts of ${mib} MiB (${(mib * MAX_PARTS) / 1024} GiB): raise ${option}`,
  );
}
