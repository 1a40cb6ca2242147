import { PxeError } from './errors.js';

/**
 * A small streaming POSIX ustar reader and writer for pxecache bundles (docs/air-gap.md): regular files only, names up
 * to 100 bytes (ours are `pxecache-bundle.json` and `blobs/<sha256>`), so `tar tf` and `tar xf` read what we write.
 * Sizes from 8 GiB on, which ustar's 11 octal digits cannot hold, use the base-256 size field that GNU tar, bsdtar
 * and Go's archive/tar read too. Bodies stream in both directions: a boot image is never held whole.
 */

const BLOCK = 512;
const OCTAL_SIZE_LIMIT = 8 ** 11;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class TarError extends PxeError {
  constructor(message: string) {
    super('bundle', message);
  }
}

export interface TarEntry {
  readonly name: string;
  readonly size: number;
  /** The entry's bytes; read it to the end before asking for the next entry. */
  readonly body: AsyncIterable<Uint8Array>;
}

/** One ustar header block for a regular file. */
export function tarHeader(name: string, size: number, mtimeSeconds: number): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const nameBytes = encoder.encode(name);
  if (nameBytes.byteLength > 100) throw new TarError(`tar entry name "${name}" is longer than 100 bytes`);
  if (!Number.isSafeInteger(size) || size < 0) throw new TarError(`tar entry ${name}: bad size ${size}`);
  h.set(nameBytes, 0);
  octal(h, 100, 8, 0o644);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  if (size < OCTAL_SIZE_LIMIT) octal(h, 124, 12, size);
  else base256(h, 124, 12, size);
  octal(h, 136, 12, Math.max(0, Math.floor(mtimeSeconds)));
  h[156] = 0x30; // '0': regular file
  h.set(encoder.encode('ustar\u000000'), 257);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  octal(h, 148, 7, sum);
  h[155] = 0x20;
  return h;
}

/** Zero bytes that pad a body of `size` bytes to a whole block. */
export function tarPadding(size: number): Uint8Array {
  return new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The end-of-archive marker: two zero blocks. */
export const tarEnd = (): Uint8Array => new Uint8Array(2 * BLOCK);

/** Parses one header block: the entry, `null` for a zero block (end of archive), or a TarError. */
export function parseTarHeader(block: Uint8Array, offset: number): { name: string; size: number } | null {
  if (block.every((b) => b === 0)) return null;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
  if (readOctal(block, 148, 8) !== sum) throw new TarError(`not a tar header at byte ${offset} (checksum mismatch)`);
  const type = block[156];
  const name = text(block, 0, 100);
  const prefix = text(block, 345, 155);
  const full = prefix ? `${prefix}/${name}` : name;
  if (type !== 0x30 && type !== 0) throw new TarError(`tar entry ${full} is not a regular file`);
  const size = (block[124] ?? 0) & 0x80 ? readBase256(block, 124, 12) : readOctal(block, 124, 12);
  if (size === null) throw new TarError(`tar entry ${full} has an unreadable size field`);
  return { name: full, size };
}

/**
 * The entries of a tar stream, in order. A stream that ends inside a header or a body is a TarError naming the entry
 * and how many of its bytes arrived (a truncated copy), never a short entry passed on as complete.
 */
export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const reader = createByteReader(source);
  for (;;) {
    const offset = reader.position();
    const block = await reader.exact(BLOCK);
    if (block === null) throw new TarError(`archive ends at byte ${offset} without its end marker (truncated?)`);
    const header = parseTarHeader(block, offset);
    if (header === null) return;
    let consumed = false;
    const body = async function* () {
      let left = header.size;
      for await (const chunk of reader.upTo(header.size)) {
        left -= chunk.byteLength;
        yield chunk;
      }
      if (left > 0)
        throw new TarError(
          `entry ${header.name} is cut short: ${header.size - left} of ${header.size} bytes (truncated?)`,
        );
      consumed = true;
    };
    yield { ...header, body: body() };
    if (!consumed) throw new TarError(`entry ${header.name} was not read to its end`);
    const pad = tarPadding(header.size).byteLength;
    if (pad && (await reader.exact(pad)) === null) throw new TarError(`archive ends inside ${header.name}'s padding`);
  }
}

interface ByteReader {
  position(): number;
  /** Exactly `n` bytes, or null when the stream ends first. */
  exact(n: number): Promise<Uint8Array | null>;
  /** At most `n` bytes, as they arrive (fewer when the stream ends). */
  upTo(n: number): AsyncGenerator<Uint8Array>;
}

function createByteReader(source: AsyncIterable<Uint8Array>): ByteReader {
  const it = source[Symbol.asyncIterator]();
  let pending: Uint8Array = new Uint8Array(0);
  let position = 0;
  const more = async (): Promise<boolean> => {
    const next = await it.next();
    if (next.done) return false;
    pending = pending.byteLength ? concat(pending, next.value) : next.value;
    return true;
  };
  const take = (n: number): Uint8Array => {
    const out = pending.subarray(0, n);
    pending = pending.subarray(n);
    position += out.byteLength;
    return out;
  };
  return {
    position: () => position,
    async exact(n) {
      while (pending.byteLength < n) if (!(await more())) return null;
      return take(n).slice();
    },
    async *upTo(n) {
      let left = n;
      while (left > 0) {
        if (pending.byteLength === 0 && !(await more())) return;
        const out = take(Math.min(left, pending.byteLength));
        left -= out.byteLength;
        yield out;
      }
    },
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}

function octal(h: Uint8Array, at: number, width: number, value: number): void {
  h.set(encoder.encode(value.toString(8).padStart(width - 1, '0')), at);
}

function base256(h: Uint8Array, at: number, width: number, value: number): void {
  let v = BigInt(value);
  for (let i = at + width - 1; i > at; i--) {
    h[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  h[at] = 0x80;
}

function readOctal(h: Uint8Array, at: number, width: number): number | null {
  const s = text(h, at, width).trim();
  return /^[0-7]+$/.test(s) ? parseInt(s, 8) : null;
}

function readBase256(h: Uint8Array, at: number, width: number): number | null {
  let v = BigInt((h[at] ?? 0) & 0x7f);
  for (let i = at + 1; i < at + width; i++) v = (v << 8n) | BigInt(h[i] ?? 0);
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : null;
}

function text(h: Uint8Array, at: number, width: number): string {
  const field = h.subarray(at, at + width);
  const nul = field.indexOf(0);
  return decoder.decode(nul === -1 ? field : field.subarray(0, nul));
}
