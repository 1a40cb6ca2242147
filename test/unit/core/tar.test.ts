import { describe, expect, it } from 'vitest';
import { parseTarHeader, readTar, tarEnd, tarHeader, tarPadding } from '../../../src/core/tar.js';

async function* chunks(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, at + size);
}

function archive(files: [string, string][]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [name, text] of files) {
    const body = new TextEncoder().encode(text);
    parts.push(tarHeader(name, body.byteLength, 0), body, tarPadding(body.byteLength));
  }
  parts.push(tarEnd());
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.byteLength) - p.byteLength);
  return out;
}

async function entriesOf(bytes: Uint8Array, chunkSize: number): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for await (const entry of readTar(chunks(bytes, chunkSize))) {
    let text = '';
    for await (const c of entry.body) text += new TextDecoder().decode(c, { stream: true });
    out.push([entry.name, text]);
  }
  return out;
}

describe('ustar reader and writer', () => {
  const files: [string, string][] = [
    ['pxecache-bundle.json', '{"a":1}'],
    [`blobs/${'a'.repeat(64)}`, 'x'.repeat(1500)],
    ['empty', ''],
  ];

  it('reads back what it wrote, whatever the chunking of the stream', async () => {
    for (const size of [1, 7, 512, 100_000]) expect(await entriesOf(archive(files), size)).toEqual(files);
  });

  it('writes sizes from 8 GiB on in the base-256 field, and reads them back', () => {
    const big = 9 * 1024 ** 3 + 5;
    const header = tarHeader('blobs/big', big, 0);
    expect(header[124]).toBe(0x80);
    expect(parseTarHeader(header, 0)).toEqual({ name: 'blobs/big', size: big });
    expect(parseTarHeader(tarHeader('small', 8 ** 11 - 1, 0), 0)?.size).toBe(8 ** 11 - 1);
  });

  it('refuses a damaged header, naming its offset', () => {
    const header = tarHeader('x', 10, 0);
    header[130] = (header[130] ?? 0) ^ 1;
    expect(() => parseTarHeader(header, 1024)).toThrow('not a tar header at byte 1024');
  });

  it('names the entry a truncated stream ends in, and an archive without its end marker', async () => {
    const whole = archive(files);
    await expect(entriesOf(whole.subarray(0, 512 + 512 + 512 + 700), 300)).rejects.toThrow(
      `entry blobs/${'a'.repeat(64)} is cut short: 700 of 1500 bytes`,
    );
    await expect(entriesOf(whole.subarray(0, whole.byteLength - 1024), 512)).rejects.toThrow('without its end marker');
  });
});
