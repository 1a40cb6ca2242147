import { execFile } from 'node:child_process';
import { join } from 'node:path';

/** The built CLI, as installed (`npm run build` first). */
export const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `pxecache <args>` with only PATH and `env` in its environment; resolves with its exit code and output. */
export function runCli(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 20_000) {
  return new Promise<CliResult>((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
