import { createHash } from 'node:crypto';
import type { Hasher, HasherFactory } from '../../core/ports.js';

export const nodeSha256: HasherFactory = (): Hasher => {
  const h = createHash('sha256');
  return {
    update: (chunk) => void h.update(chunk),
    digest: () => Promise.resolve(h.digest('hex')),
  };
};
