import { resolve } from 'node:path';
import { hashToken, newToken, parseScopes, tokenListEntry } from '../core/auth.js';
import type { AgentConfig, FetchConfig, ServeConfig, TokenConfig } from '../core/config.js';
import type { Logger } from '../core/ports.js';
import { startNodeServer } from '../adapters/node.js';
import { createHttpSource } from '../agent/http-source.js';
import { createStoreSource } from '../agent/store-source.js';
import { createAgent } from '../agent/sync.js';
import { nodeSha256 } from '../runtime/node/hasher.js';
import { createNodeFetcher } from '../runtime/node/fetcher-deps.js';
import { openStore } from '../storage/store-url.js';
import { openWriterStore, s3TimeoutsOf } from '../runtime/node/writer-store.js';
import { EXIT_FAILED, EXIT_OK } from './exit.js';

type Out = (line: string) => void;

export async function runServe(config: ServeConfig, logger: Logger): Promise<number> {
  const server = await startNodeServer(config, logger);
  // SIGHUP re-reads --tokens-file (rotation without a restart), as daemons conventionally reload on it.
  const reload = () => void server.reload();
  process.on('SIGHUP', reload);
  await new Promise<void>((resolveSignal) => {
    process.once('SIGINT', resolveSignal);
    process.once('SIGTERM', resolveSignal);
  });
  process.off('SIGHUP', reload);
  logger.info('shutting down');
  await server.close();
  return EXIT_OK;
}

/** One-shot fetch without a server: prints the final status as JSON; exit 0 only when it is ready. */
export async function runFetch(config: FetchConfig, logger: Logger, out: Out): Promise<number> {
  const { store } = await openWriterStore(config, logger);
  const { fetcher, close } = createNodeFetcher(store, config, logger);
  try {
    const submitted = await fetcher.submit({ prefix: config.prefix, path: config.url });
    const final = await submitted.done;
    out(JSON.stringify(final, null, 2));
    return final.state === 'ready' || final.state === 'nfs-noop' ? EXIT_OK : EXIT_FAILED;
  } finally {
    await close();
  }
}

export async function runAgent(config: AgentConfig, logger: Logger, out: Out): Promise<number> {
  const root = resolve(config['tftp-root']);
  const stateDir = resolve(config['state-dir'] ?? `${root}.state`);
  const source = /^https?:\/\//.test(config.source)
    ? createHttpSource({ baseUrl: config.source, ...(config.token ? { token: config.token } : {}) })
    : await storeSource(config);
  const setHoldMs = config['set-hold'] * 1000;
  const report = { intervalSeconds: config['report-interval'] };
  const agent = createAgent({
    source,
    root,
    stateDir,
    site: config.site,
    hasher: nodeSha256,
    logger,
    setHoldMs,
    report,
  });
  await agent.start();
  if (config.once) {
    const report = await agent.syncOnce();
    for (const n of report.names)
      out(
        `${n.outcome.padEnd(9)} ${n.name}${n.version ? ` ${n.version}` : ''}${'message' in n ? `: ${n.message}` : ''}`,
      );
    const cfg = report.configs;
    for (const path of cfg.written) out(`written   ${path}`);
    for (const path of cfg.deleted) out(`deleted   ${path}`);
    for (const note of cfg.kept) out(`kept      ${note.path}: ${note.message}`);
    for (const note of cfg.failed) out(`failed    ${note.path}: ${note.message}`);
    if (cfg.error) out(`failed    configs of site ${cfg.site}: ${cfg.error}`);
    const check = await agent.check();
    for (const p of check.problems) out(`problem   ${p}`);
    out(
      `${check.ok && report.ok ? 'in sync' : 'NOT in sync'}: ${report.names.length} names, ${report.bytesDownloaded} bytes downloaded, ${report.durationMs} ms`,
    );
    return check.ok && report.ok ? EXIT_OK : EXIT_FAILED;
  }
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  logger.info('agent running', { source: source.description, root, site: config.site });
  await agent.run({ intervalMs: config.interval * 1000, waitSeconds: config.wait, signal: stop.signal });
  return EXIT_OK;
}

/** `pxecache token`: the token goes to its holder, only its sha256 to the server's configuration. */
export async function runToken(config: TokenConfig, out: Out): Promise<number> {
  const token = newToken();
  const record = {
    id: config.id,
    sha256: await hashToken(token, nodeSha256),
    scopes: parseScopes(config.scopes, '--scopes'),
  };
  out(`token for "${record.id}" (shown only now; give it to its holder, e.g. as PXECACHE_TOKEN of an agent):`);
  out(`  ${token}`);
  out('');
  out('on the server, add to --tokens / PXECACHE_TOKENS (entries separated by ","):');
  out(`  ${tokenListEntry(record)}`);
  out('or to the "tokens" array of the --tokens-file document:');
  out(`  ${JSON.stringify(record)}`);
  return EXIT_OK;
}

async function storeSource(config: AgentConfig) {
  const { store, description } = await openStore(config.source, 'source', {
    probe: false,
    s3Timeouts: s3TimeoutsOf(config),
  });
  return createStoreSource({ store, description, pollMs: 500 });
}
