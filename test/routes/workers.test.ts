/**
 * The shared route suite against the fetcher as a Cloudflare Worker: real workerd from the top-level wrangler.toml
 * (R2 bucket, fetch jobs in a Workflow), through wrangler's unstable_startWorker. Same requests, same answers as on
 * Node, but for what DESIGN.md documents: no ftp:// (no raw sockets on Workers).
 */
import { startTestWorker } from '../helpers/worker.js';
import { describeRouteSuite } from './route-suite.js';

const SERVER_NAME = 'tftp.routes.example';

describeRouteSuite('workers (workerd, R2, Workflows)', async () => {
  const worker = await startTestWorker({ PXECACHE_SERVER_NAME: SERVER_NAME });
  return {
    url: worker.url,
    token: worker.tokens.admin,
    serverName: SERVER_NAME,
    blob: 'bytes',
    ftp: false,
    close: () => worker.dispose(),
  };
});
