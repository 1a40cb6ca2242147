/**
 * Shared plumbing of the agent benchmarks: an upstream whose files differ by name and can be respun, publishing many
 * names through a running `pxecache serve` (the real fetch path, far faster than one `pxecache fetch` process per
 * name), a long-running `pxecache agent` child with its JSON logs, a counting proxy, CPU time from /proc, and a
 * throwaway Ceph RGW.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CLI } from '../harness.js';

const BLOCK = randomBytes(1 << 20);
/** Debian's awscli (v2) is the baseline client; a pip-installed v1 earlier on PATH would be another program. */
export const AWS = '/usr/bin/aws';
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

export interface VariedUpstream {
  /** `/<bytes>/<name>`: `bytes` bytes, distinct per name and revision (so every name is its own blob). */
  url(bytes: number, name: string): string;
  /** The next GET of `name` answers new bytes under a new ETag (an installation medium respun). */
  respin(name: string): void;
  close(): void;
}

/**
 * The shared data server sends the same bytes under every name, which the store would deduplicate into one blob;
 * here the first 32 bytes are sha256(name, revision). Honours If-None-Match, as a mirror does.
 */
export async function startVariedUpstream(): Promise<VariedUpstream> {
  const revisions = new Map<string, number>();
  const server = createServer((req, res) => {
    const m = /^\/(\d+)\/([^/?]+)/.exec(req.url ?? '');
    if (!m) return res.writeHead(404).end();
    const size = Number(m[1]);
    const name = m[2]!;
    const rev = revisions.get(name) ?? 0;
    const etag = `"${size}-${name}-${rev}"`;
    if (req.headers['if-none-match'] === etag) return res.writeHead(304, { etag }).end();
    res.writeHead(200, { 'content-length': size, etag, 'content-type': 'application/octet-stream' });
    const head = Buffer.from(BLOCK.subarray(0, Math.min(size, BLOCK.length)));
    createHash('sha256').update(`${name}#${rev}`).digest().copy(head, 0, 0, Math.min(32, head.length));
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        const n = Math.min(BLOCK.length, size - sent);
        const chunk = sent === 0 ? head.subarray(0, n) : BLOCK.subarray(0, n);
        sent += n;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  const base = await listen(server);
  return {
    url: (bytes, name) => `${base}/${bytes}/${name}`,
    respin: (name) => revisions.set(name, (revisions.get(name) ?? 0) + 1),
    close: () => {
      server.close();
      server.closeAllConnections();
    },
  };
}

export interface FetchStatus {
  readonly name: string;
  readonly state: string;
  readonly sha256: string | null;
  readonly size: number | null;
  readonly fetchedAt: string | null;
}

/** POST /api/v1/fetch?wait= for one name: the final status, which must be `ready`. */
export async function fetchReady(serveUrl: string, name: string, url: string): Promise<FetchStatus> {
  const res = await fetch(`${serveUrl}/api/v1/fetch?wait=120`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, url }),
  });
  const status = (await res.json()) as FetchStatus;
  if (res.status !== 200 || status.state !== 'ready') {
    throw new Error(`fetch ${name} answered ${res.status}: ${JSON.stringify(status).slice(0, 400)}`);
  }
  return status;
}

/** Publishes every `{name, url}` through the serve's native API, `concurrency` requests in flight. */
export async function publishAll(
  serveUrl: string,
  items: readonly { name: string; url: string }[],
  concurrency: number,
): Promise<void> {
  const t0 = Date.now();
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      const { name, url } = items[next++]!;
      await fetchReady(serveUrl, name, url);
      if (++done % 1000 === 0) console.error(`  published ${done}/${items.length}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  console.error(`  published ${items.length} names in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

export interface AgentProcess {
  readonly pid: number;
  readonly logs: Record<string, unknown>[];
  /** Resolves with the first log line (seen so far or later) that `match` accepts. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** `pxecache agent <args>` running in the background (the bin, as operators run it), its stderr parsed as JSON. */
export function startAgentProcess(args: readonly string[]): AgentProcess {
  const child = spawn(CLI, ['agent', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let pending = '';
  let raw = '';
  child.stderr.on('data', (d: Buffer) => {
    raw = (raw + d.toString()).slice(-20_000);
    const lines = (pending + d.toString()).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line });
      }
    }
    for (const w of waiters) w();
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    pid: child.pid as number,
    logs,
    waitForLog: (match, timeoutMs) =>
      new Promise((resolve, reject) => {
        let seen = 0;
        const check = () => {
          for (; seen < logs.length; seen++) {
            if (match(logs[seen]!)) return done(() => resolve(logs[seen]!));
          }
          if (child.exitCode !== null) done(() => reject(new Error(`agent exited ${child.exitCode}:\n${raw}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`agent log wait timed out:\n${raw}`))), timeoutMs);
        const done = (fn: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          fn();
        };
        waiters.add(check);
        check();
      }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** User + system CPU seconds a process has used so far (/proc/<pid>/stat fields 14 and 15, in clock ticks). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

export interface CountingProxy {
  readonly url: string;
  /** Requests forwarded so far, by path without the query. */
  readonly counts: Map<string, number>;
  total(): number;
  reset(): void;
  /** Called as each request arrives (path and query), after it was counted. */
  onRequest: ((url: string) => void) | null;
  close(): void;
}

/** A plain HTTP proxy in front of `target` that counts what passes (the agent's own view of its requests). */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const to = new URL(target);
  const counts = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    proxy.onRequest?.(req.url ?? '/');
    const up = request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  const proxy: CountingProxy = {
    url: await listen(server),
    counts,
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
    reset: () => counts.clear(),
    onRequest: null,
    close: () => {
      server.close();
      server.closeAllConnections();
    },
  };
  return proxy;
}

export { startRgw, stopRgw } from '../rgw.js';

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

async function listen(server: Server): Promise<string> {
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
