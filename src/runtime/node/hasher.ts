import { createHash } from 'node:crypto';
import type { Hasher, HasherFactory } from '../../core/ports.js';

const nodeHasher =
  (algorithm: 'sha256' | 'md5'): HasherFactory =>
  (): Hasher => {
    const h = createHash(algorithm);
    return {
      update: (chunk) => void h.update(chunk),
      digest: () => Promise.resolve(h.digest('hex')),
    };
  };

export const nodeSha256 = nodeHasher('sha256');
/** Only to check media that publish nothing but `MD5SUMS` (old Debian installers); never to identify bytes. */
export const nodeMd5 = nodeHasher('md5');
