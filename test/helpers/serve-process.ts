/**
 * `pxecache serve` as a real child process (the built CLI in dist/; run `npm run build` first). The URLs are learned
 * from the "pxecache serving" JSON log line (`url`, and `httpsUrl` with --https-port), so `--port 0` works and
 * several processes can share one machine.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// From test/helpers/ (vitest) or dist-bench/test/helpers/ (benchmarks, compiled).
const CLI = [new URL('../../dist/cli/main.js', import.meta.url), new URL('../../../dist/cli/main.js', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((p) => existsSync(p));
const READY_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;

export interface LogLine {
  readonly msg?: string;
  readonly level?: string;
  readonly [field: string]: unknown;
}

export interface ServeProcess {
  /** The HTTP listener (the HTTPS one with --no-http). */
  readonly url: string;
  /** The HTTPS listener, with --https-port. */
  readonly httpsUrl?: string;
  readonly pid: number;
  /** Every stderr line parsed as JSON (non-JSON lines as `{ msg: <raw> }`), in order. */
  readonly logs: LogLine[];
  /** Raw stdout + stderr, for failure messages. */
  output(): string;
  /** Settles with the exit code (or signal) once the process ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after 5 s; resolves once the process is gone. */
  stop(): Promise<void>;
  /** Sends a signal right away (SIGKILL to simulate a crash) and waits for the exit. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** `store` is a directory (a file store) or a store URL (`s3://bucket/prefix`, with `env` carrying AWS_*). */
export async function startServeProcess(
  store: string,
  extra: readonly string[] = [],
  env: Record<string, string> = {},
): Promise<ServeProcess> {
  if (CLI === undefined) throw new Error('dist/cli/main.js is missing: run "npm run build" first');
  const storeUrl = /^(file|s3):/.test(store) ? store : `file:${store}`;
  // The bin itself, as operators run it (its #! line carries node's memory flags).
  const child = spawn(CLI, ['serve', '--port', '0', '--store', storeUrl, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PXECACHE_LOG_LEVEL: process.env['PXECACHE_LOG_LEVEL'] ?? 'info', ...env },
  });
  const logs: LogLine[] = [];
  let raw = '';
  let pending = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );

  const serving = await new Promise<LogLine & { url: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pxecache serve did not log "pxecache serving" within ${READY_TIMEOUT_MS} ms:\n${raw}`));
    }, READY_TIMEOUT_MS);
    child.stdout?.on('data', (d: Buffer) => (raw += d.toString()));
    child.stderr?.on('data', (d: Buffer) => {
      const text = d.toString();
      raw += text;
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (line.trim() === '') continue;
        const parsed = parseLine(line);
        logs.push(parsed);
        if (parsed.msg === 'pxecache serving' && typeof parsed['url'] === 'string') {
          clearTimeout(timer);
          resolve(parsed as LogLine & { url: string });
        }
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`pxecache serve exited (${code ?? signal}) before serving:\n${raw}`));
    });
  });

  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  const httpsUrl = serving['httpsUrl'];
  return {
    url: serving.url,
    ...(typeof httpsUrl === 'string' ? { httpsUrl } : {}),
    pid: child.pid as number,
    logs,
    output: () => raw,
    exited,
    kill,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const escalate = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      try {
        await kill('SIGTERM');
      } finally {
        clearTimeout(escalate);
      }
    },
  };
}

function parseLine(line: string): LogLine {
  try {
    const value: unknown = JSON.parse(line);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as LogLine;
  } catch {
    // not JSON: kept raw below
  }
  return { msg: line };
}
