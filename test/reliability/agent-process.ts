/**
 * `pxecache agent` as a child process that a reliability harness can kill at a chosen moment: the built bin as
 * operators run it, its JSON log lines parsed as they arrive so a kill can be timed on an event ("version
 * downloaded", "link swapped") rather than on a guess. Free of vitest imports: `npm run soak` uses it too.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// From test/reliability/ (vitest) or dist-bench/test/reliability/ (compiled soak run).
export const CLI = [
  new URL('../../dist/cli/main.js', import.meta.url),
  new URL('../../../dist/cli/main.js', import.meta.url),
]
  .map((u) => fileURLToPath(u))
  .find((p) => existsSync(p));

export interface AgentLine {
  readonly msg?: string;
  readonly [field: string]: unknown;
}

export interface AgentProcess {
  readonly pid: number;
  /** Parsed stderr lines so far (non-JSON lines as `{ msg: <raw> }`). */
  readonly lines: AgentLine[];
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first line (already seen or still to come) for which `match` holds; rejects on exit/timeout. */
  waitForLine(what: string, match: (line: AgentLine) => boolean, timeoutMs?: number): Promise<AgentLine>;
  /** Registers a callback for every line from now on. */
  onLine(fn: (line: AgentLine) => void): void;
  /** SIGKILL (the crash) and wait until the process is gone. */
  kill(): Promise<void>;
}

export function requireCli(): string {
  if (CLI === undefined) throw new Error('dist/cli/main.js is missing: run "npm run build" first');
  return CLI;
}

export function startAgentProcess(args: readonly string[], env: Record<string, string> = {}): AgentProcess {
  const child = spawn(requireCli(), ['agent', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PXECACHE_LOG_LEVEL: 'info', ...env },
  });
  const lines: AgentLine[] = [];
  const listeners: ((line: AgentLine) => void)[] = [];
  let raw = '';
  let pending = '';
  child.stdout.on('data', (d: Buffer) => (raw += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    const text = d.toString();
    raw += text;
    pending += text;
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    for (const part of parts) {
      if (part.trim() === '') continue;
      const line = parseLine(part);
      lines.push(line);
      for (const fn of listeners) fn(line);
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', () => resolve({ code: -1, signal: null }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  let gone = false;
  void exited.then(() => (gone = true));

  return {
    pid: child.pid ?? -1,
    lines,
    output: () => raw,
    exited,
    onLine: (fn) => void listeners.push(fn),
    waitForLine(what, match, timeoutMs = 30_000) {
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`agent did not log ${what} within ${timeoutMs} ms:\n${tail(raw)}`)),
          timeoutMs,
        );
        listeners.push((line) => {
          if (!match(line)) return;
          clearTimeout(timer);
          resolve(line);
        });
        void exited.then(({ code, signal }) => {
          clearTimeout(timer);
          reject(new Error(`agent exited (${code ?? signal}) before logging ${what}:\n${tail(raw)}`));
        });
      });
    },
    async kill() {
      if (!gone) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** `pxecache agent --once ...` to completion: exit code and everything it printed. */
export async function runAgentOnce(
  args: readonly string[],
  timeoutMs = 60_000,
): Promise<{ code: number | null; output: string }> {
  const agent = startAgentProcess(['--once', ...args]);
  const timer = setTimeout(() => void agent.kill(), timeoutMs);
  const { code, signal } = await agent.exited;
  clearTimeout(timer);
  if (signal) throw new Error(`agent --once did not exit within ${timeoutMs} ms (${signal}):\n${agent.output()}`);
  return { code, output: agent.output() };
}

function parseLine(line: string): AgentLine {
  try {
    const value: unknown = JSON.parse(line);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as AgentLine;
  } catch {
    // not JSON (stdout of --once, a crash trace): kept raw
  }
  return { msg: line };
}

const tail = (text: string) => text.split('\n').slice(-15).join('\n');
