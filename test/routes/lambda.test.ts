/**
 * The shared route suite against the fetcher on AWS Lambda: the handler's runtime on an s3:// store (Ceph RGW),
 * reached through a local HTTP listener that turns each request into a Function URL event, fetch jobs in their own
 * (in-process) invocation. Same requests, same answers as Node, but for what DESIGN.md documents: the blob route
 * redirects to a presigned S3 URL.
 */
import { bridge, LAMBDA_TOKEN, startLambda } from '../helpers/lambda.js';
import { describeRouteSuite } from './route-suite.js';

const SERVER_NAME = 'tftp.routes.example';

describeRouteSuite('lambda (Function URL events, s3 store on Ceph RGW)', async () => {
  const lambda = await startLambda({ PXECACHE_SERVER_NAME: SERVER_NAME });
  const http = await bridge(lambda);
  return {
    url: http.url,
    token: LAMBDA_TOKEN,
    serverName: SERVER_NAME,
    blob: 'redirect',
    ftp: true,
    async close() {
      await http.close();
      await lambda.close();
    },
  };
});
