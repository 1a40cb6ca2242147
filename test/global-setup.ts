import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { RGW_SCRIPT, startRgw } from './helpers/rgw.js';

let stop: (() => Promise<void>) | undefined;
let stopOnExit: (() => void) | undefined;

/**
 * One Ceph RGW for the whole run (~5 s to start), shared by every S3 test through `inject('rgw')`; each test makes
 * its own bucket. Vitest cannot tell here whether the selected files need it, so it always starts, and a failure to
 * start fails the run: S3 tests are never skipped.
 */
export async function setup(project: TestProject): Promise<void> {
  const rgw = await startRgw();
  stop = rgw.stop;
  // A run that ends without teardown (process.exit after a crash) must still not leave daemons behind.
  stopOnExit = () => execFileSync('bash', [RGW_SCRIPT, 'stop', rgw.dir], { stdio: 'ignore', timeout: 30_000 });
  process.once('exit', stopOnExit);
  project.provide('rgw', rgw.env);
}

export async function teardown(): Promise<void> {
  if (stopOnExit !== undefined) process.off('exit', stopOnExit);
  await stop?.();
}
