#!/usr/bin/env -S node --max-semi-space-size=1 --no-liftoff
// The flags keep a long transfer's memory flat (README "Memory"): a 1 MiB young generation is collected often, so
// the body's chunks (external memory) are freed within a few MiB instead of ~50; and compiling undici's WebAssembly
// parser with one tier instead of two avoids a 35 MiB spike at the first request.
import { commandOperands, commands, parseConfig, type CommandName } from '../core/config.js';
import { createNodeLogger, type LogFormat } from '../runtime/node/logger.js';
import { VERSION } from '../runtime/node/version.js';
import { collectOptions, helpText, optionSpecs } from './args.js';
import { runAgent, runFetch, runServe, runToken } from './commands.js';
import { runGc } from './gc.js';
import { EXIT_USAGE, exitCodeOf, messageOf } from './exit.js';
import { runExport } from './export.js';
import { runImport } from './import.js';
import { runRollback, runUnpin } from './lifecycle.js';
import { runStatus } from './status.js';

const SUMMARIES: Record<CommandName, string> = {
  serve: 'Run the fetcher (smart-proxy TFTP routes + native API); --tftp-root also runs an agent in-process.',
  agent: 'Keep a TFTP root in sync with a fetcher or a store: verified versions, relative links swapped atomically.',
  fetch: 'Fetch one boot file into a store, without a server; prints the final status as JSON.',
  token: 'Make a bearer token: prints it once, and the hashed entry to configure on the server.',
  import: 'Put local boot files (or a bundle from pxecache export) into a store as if fetched from --as-url.',
  export: 'Write the current version of published names, with their upstream validators, as one bundle file.',
  gc: 'Delete from the store the versions no name keeps any more, after a grace period (--dry-run: only show them).',
  rollback: 'Move a name (or every name of a prefix) back to a kept version and pin it there until unpinned.',
  unpin: 'Remove a rollback pin; a newer version held while pinned becomes current.',
  status: "Show names x sites (version, freshness) and each site's last report; with a name, its status and row.",
};

const USAGE = `pxecache ${VERSION}: edge cache for network-boot files

usage:
  pxecache serve  --port <n> --host <addr> --store <store-url> [--tftp-root <dir>]
  pxecache agent  --source <http(s)-url | store-url> --tftp-root <dir> [--once] [--site <name>] [--state-dir <dir>]
  pxecache fetch  --store <store-url> --prefix <p> --url <u>
  pxecache token  --id <name> [--scopes read|fetch|admin[+...]]
  pxecache import <file|dir> --store <store-url> --prefix <p> --as-url <u>
  pxecache import <bundle> --store <store-url>
  pxecache export --store <store-url> --out <file> [--prefix <p>] [<name>...]
  pxecache gc     --store <store-url> [--dry-run] [--grace <seconds>]
  pxecache rollback <name|prefix> --store <store-url> [--to <version>]
  pxecache unpin    <name|prefix> --store <store-url>
  pxecache status   [<name>] --source <http(s)-url | store-url> [--token <t>]
  pxecache <command> --help

store URLs: file:<dir> (embedded default), s3://<bucket>/<prefix>`;

/** `--log-format` where the command has it (serve, agent, fetch); the others log as `auto` does. */
const loggerFor = (config: { 'log-level': 'debug' | 'info' | 'warn' | 'error'; 'log-format'?: LogFormat }) =>
  createNodeLogger({ level: config['log-level'], format: config['log-format'] ?? 'auto' });

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const print = (line: string) => void process.stdout.write(`${line}\n`);
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    print(USAGE);
    return command ? 0 : EXIT_USAGE;
  }
  if (command === '--version') {
    print(VERSION);
    return 0;
  }
  if (!(command in commands)) {
    process.stderr.write(`pxecache: unknown command "${command}"\n\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  const name = command as CommandName;
  const specs = optionSpecs(commands[name]);
  const operands = commandOperands[name] ?? [];
  if (rest.includes('--help') || rest.includes('-h')) {
    print(helpText(name, SUMMARIES[name], specs, operands));
    return 0;
  }
  const raw = collectOptions(specs, rest, process.env, operands);
  if (name === 'serve') {
    const config = parseConfig('serve', raw);
    return runServe(config, loggerFor(config));
  }
  if (name === 'agent') {
    const config = parseConfig('agent', raw);
    return runAgent(config, loggerFor(config), print);
  }
  if (name === 'token') return runToken(parseConfig('token', raw), print);
  if (name === 'import') {
    const config = parseConfig('import', raw);
    const note = (line: string) => void process.stderr.write(`${line}\n`);
    return runImport(config, loggerFor(config), print, note);
  }
  if (name === 'export') return runExport(parseConfig('export', raw), print);
  if (name === 'gc') return runGc(parseConfig('gc', raw), print);
  if (name === 'rollback') {
    const config = parseConfig('rollback', raw);
    return runRollback(config, loggerFor(config), print);
  }
  if (name === 'unpin') {
    const config = parseConfig('unpin', raw);
    return runUnpin(config, loggerFor(config), print);
  }
  if (name === 'status') return runStatus(parseConfig('status', raw), print);
  const config = parseConfig('fetch', raw);
  return runFetch(config, loggerFor(config), print);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`pxecache: ${messageOf(err)}\n`);
    process.exitCode = exitCodeOf(err);
  },
);
