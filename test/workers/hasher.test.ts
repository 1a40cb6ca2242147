import { describe, expect, it } from 'vitest';
import { workersMd5, workersSha256 } from '../../src/runtime/workers/hasher.js';

const MiB = 1024 * 1024;

function hashOf(...chunks: Uint8Array[]): Promise<string> {
  const h = workersSha256();
  for (const c of chunks) h.update(c);
  return h.digest();
}

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

describe('workers sha256 (crypto.DigestStream)', () => {
  it('matches the FIPS 180-2 vectors, whole and split', async () => {
    expect(await hashOf()).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(await hashOf(new TextEncoder().encode('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    const twoBlocks = new TextEncoder().encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq');
    expect(await hashOf(twoBlocks.subarray(0, 5), twoBlocks.subarray(5, 5), twoBlocks.subarray(5))).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  it('hashes 10 MiB fed in uneven chunks through one reused buffer like crypto.subtle over the whole', async () => {
    const data = new Uint8Array(10 * MiB);
    for (let at = 0; at < data.byteLength; at += 65536) crypto.getRandomValues(data.subarray(at, at + 65536));
    const h = workersSha256();
    // The caller reuses its buffer (as a network reader does): the hasher must have taken the bytes by then.
    const buffer = new Uint8Array(65_537);
    for (let at = 0, i = 0; at < data.byteLength; i++) {
      const n = Math.min(buffer.byteLength - (i % 3) * 1000, data.byteLength - at);
      buffer.set(data.subarray(at, at + n));
      h.update(buffer.subarray(0, n));
      at += n;
    }
    expect(await h.digest()).toBe(hex(await crypto.subtle.digest('SHA-256', data)));
  });
});

describe('workers md5 (crypto.DigestStream), for media that publish only MD5SUMS', () => {
  it('matches the RFC 1321 vectors, whole and split', async () => {
    const md5 = async (...chunks: string[]) => {
      const h = workersMd5();
      for (const c of chunks) h.update(new TextEncoder().encode(c));
      return h.digest();
    };
    expect(await md5()).toBe('d41d8cd98f00b204e9800998ecf8427e');
    expect(await md5('abc')).toBe('900150983cd24fb0d6963f7d28e17f72');
    expect(await md5('message ', '', 'digest')).toBe('f96b697d7cb7938d525a2f31aaf161d0');
  });
});
