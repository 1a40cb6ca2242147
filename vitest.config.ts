import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';

const WORKERS_TESTS = 'test/workers/**/*.test.ts';

export default defineConfig({
  test: {
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          // Those run inside workerd (the project below): Node would lack the R2 binding and crypto.DigestStream.
          exclude: [WORKERS_TESTS],
          testTimeout: 30_000,
          hookTimeout: 30_000,
          pool: 'forks',
          // One Ceph RGW (a real S3 engine) for the whole run; tests reach it with inject('rgw').
          globalSetup: ['./test/global-setup.ts'],
        },
      },
      {
        // Real workerd through miniflare; the bindings are declared here, not in wrangler.toml (deployment config).
        plugins: [
          cloudflareTest({
            miniflare: {
              compatibilityDate: '2026-04-01',
              // The shared conformance suite imports node:crypto and uses setImmediate.
              compatibilityFlags: ['nodejs_compat'],
              r2Buckets: ['CONFORMANCE', 'BUCKET'],
            },
          }),
        ],
        test: { name: 'workers', include: [WORKERS_TESTS], testTimeout: 60_000, hookTimeout: 30_000 },
      },
    ],
  },
});
