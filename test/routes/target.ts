/**
 * What a runtime harness (Node child process, Workers via wrangler's unstable_startWorker, Lambda) hands the shared
 * route suite: a running app reachable over HTTP, and the few facts DESIGN.md lets differ between runtimes. The suite
 * assumes nothing else: no process, no store on disk, no logs.
 */
export interface RouteTarget {
  /** Base URL of the running app, without a trailing slash: `http://127.0.0.1:8080`. */
  readonly url: string;
  /** A raw bearer token with scope `admin`, configured on the target (as its sha256 entry). */
  readonly token: string;
  /** The `--server-name` the default site was configured with (answered on /tftp/serverName). */
  readonly serverName: string;
  /**
   * The URL the app must be given to reach a test upstream the suite serves at `url` (a loopback URL of the test
   * process). Omitted: the same URL (the app shares the loopback interface).
   */
  readonly upstreamUrl?: (url: string) => string;
  /** DESIGN.md: Node and Workers answer the blob route with the bytes; Lambda redirects to a presigned URL. */
  readonly blob: 'bytes' | 'redirect';
  /** DESIGN.md: ftp:// media where the runtime can download them (Node), else a 400 saying so. */
  readonly ftp: boolean;
  close(): Promise<void>;
}
