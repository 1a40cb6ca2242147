/**
 * The shared route suite against `pxecache serve` as operators run it (the built CLI, a child process; run
 * `npm run build` first): with the embedded file store, and with an S3 store on the Ceph RGW the test run starts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashToken, newToken, tokenListEntry } from '../../src/core/auth.js';
import { nodeSha256 } from '../../src/runtime/node/hasher.js';
import { createTestBucket, rgwClient, rgwEnv } from '../helpers/rgw.js';
import { startServeProcess } from '../helpers/serve-process.js';
import { describeRouteSuite } from './route-suite.js';
import type { RouteTarget } from './target.js';

const SERVER_NAME = 'tftp.routes.example';

/** `serve` on loopback with one admin token and a server name; `release` runs after the process stopped. */
async function serveTarget(
  store: string,
  env: Record<string, string>,
  release: () => Promise<void>,
): Promise<RouteTarget> {
  const token = newToken();
  const entry = tokenListEntry({ id: 'route-suite', sha256: await hashToken(token, nodeSha256), scopes: ['admin'] });
  const flags = ['--host', '127.0.0.1', '--tokens', entry, '--server-name', SERVER_NAME];
  let serve;
  try {
    serve = await startServeProcess(store, flags, env);
  } catch (err) {
    await release();
    throw err;
  }
  const stopped = serve;
  return {
    url: serve.url,
    token,
    serverName: SERVER_NAME,
    blob: 'bytes',
    ftp: true,
    async close() {
      await stopped.stop();
      await release();
    },
  };
}

describeRouteSuite('node (serve, file store)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pxecache-routes-'));
  return serveTarget(join(dir, 'store'), {}, () => rm(dir, { recursive: true, force: true }));
});

describeRouteSuite('node (serve, s3 store on Ceph RGW)', async () => {
  const { bucket, cleanup } = await createTestBucket(rgwClient());
  const { AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY } = rgwEnv();
  const env = { AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY };
  return serveTarget(`s3://${bucket}/routes`, env, cleanup);
});
