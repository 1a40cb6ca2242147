import { describe, expect, it } from 'vitest';
import { readAll } from '../../src/storage/object-store.js';
import { createMemoryStore } from '../../src/storage/memory-store.js';
import { describeObjectStore } from './conformance.js';

describeObjectStore('memory', async () => ({ store: createMemoryStore(), cleanup: async () => undefined }));

describe('memory store', () => {
  it('does not alias the caller’s buffer or the reader’s chunks', async () => {
    // A store keeping references would let a reused network buffer, or a consumer, rewrite stored objects.
    const store = createMemoryStore();
    const bytes = new Uint8Array([1, 2, 3]);
    await store.put('k', bytes);
    bytes[0] = 9;
    for await (const chunk of (await store.get('k'))!.body) chunk.fill(9);
    expect(await readAll((await store.get('k'))!.body)).toEqual(new Uint8Array([1, 2, 3]));
  });
});
