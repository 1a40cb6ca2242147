import { env } from 'cloudflare:workers';
import { createR2Store } from '../../src/storage/r2-store.js';
import { describeObjectStore } from '../storage/conformance.js';

/** Every key in the bucket deleted: the suite expects each test to start with an empty store. */
async function emptyBucket(bucket: R2Bucket): Promise<void> {
  for (;;) {
    const page = await bucket.list({ limit: 1000 });
    if (page.objects.length === 0) return;
    await bucket.delete(page.objects.map((o) => o.key));
  }
}

describeObjectStore('r2 binding (workerd)', async () => {
  await emptyBucket(env.CONFORMANCE);
  return { store: createR2Store(env.CONFORMANCE), cleanup: () => emptyBucket(env.CONFORMANCE) };
});
