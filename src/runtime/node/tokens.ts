import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { readTokens, type TokenRecord, type TokenSet } from '../../core/auth.js';
import { ConfigError, describe } from '../../core/errors.js';
import type { Logger } from '../../core/ports.js';

/**
 * Token rotation without a restart: `--tokens-file` is re-read when it changes and on SIGHUP, and the new set
 * replaces the old one for the next request. A file that does not parse (or is half-written, or gone) changes
 * nothing: the previous tokens stay in force and the problem is logged as an error, once per broken content.
 *
 * Changes are noticed by fs.watch on the file's directory (editors and config management replace the file by
 * rename, which a watch on the file itself would miss) and, because fs.watch is not reliable everywhere (NFS, some
 * containers), by a periodic stat of the file; both only schedule a re-read, debounced, and a re-read of identical
 * content does nothing.
 */
export interface TokensReloader {
  /** Re-reads the file now; `reason` is logged (`SIGHUP`, `change`). */
  reload(reason: string): Promise<void>;
  /** Starts noticing changes; returns the function that stops it. */
  watch(opts?: { pollMs?: number; fsWatch?: boolean }): () => void;
}

const DEBOUNCE_MS = 50;

export function createTokensReloader(opts: {
  /** `--tokens-file`; without it there is nothing to re-read (`--tokens` comes from the command line). */
  file: { path: string; text: string } | undefined;
  list: string | undefined;
  tokens: TokenSet;
  insecureNoAuth: boolean;
  logger: Logger;
}): TokensReloader {
  const { logger, tokens } = opts;
  const path = opts.file?.path;
  let loaded = opts.file?.text;
  /** The content (or read error) last reported as broken, so a periodic check does not repeat the error. */
  let rejected: string | undefined;
  let queue = Promise.resolve();

  async function reloadNow(reason: string): Promise<void> {
    if (path === undefined) {
      logger.info('tokens not reloaded: no --tokens-file to re-read', { reason, tokens: tokens.current().length });
      return;
    }
    const forced = reason === 'SIGHUP';
    const fail = (key: string, issues: readonly string[]) => {
      if (key === rejected && !forced) return;
      rejected = key;
      logger.error('tokens-file reload failed: keeping the previous tokens', {
        reason,
        path,
        issues,
        tokens: tokens.current().length,
      });
    };
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      return fail(`unreadable: ${describe(err)}`, [`--tokens-file: cannot read ${path}: ${describe(err)}`]);
    }
    if (text === loaded && !forced) return;
    let next: TokenRecord[];
    try {
      next = readTokens({ ...(opts.list !== undefined ? { list: opts.list } : {}), file: { path, text } });
      if (opts.insecureNoAuth && next.length > 0)
        throw new ConfigError(['--insecure-no-auth: contradicts the tokens now in --tokens-file: restart without it']);
    } catch (err) {
      return fail(text, err instanceof ConfigError ? err.issues : [describe(err)]);
    }
    const before = new Map(tokens.current().map((t) => [t.id, t]));
    tokens.replace(next);
    loaded = text;
    rejected = undefined;
    const after = new Map(next.map((t) => [t.id, t]));
    const ids = (list: Iterable<string>) => [...list];
    logger.info('tokens reloaded', {
      reason,
      path,
      tokens: next.length,
      added: ids(after.keys()).filter((id) => !before.has(id)),
      removed: ids(before.keys()).filter((id) => !after.has(id)),
      changed: next
        .filter((t) => {
          const old = before.get(t.id);
          return old !== undefined && (old.sha256 !== t.sha256 || old.scopes.join() !== t.scopes.join());
        })
        .map((t) => t.id),
    });
  }

  const reload = (reason: string) => (queue = queue.then(() => reloadNow(reason)));

  return {
    reload,
    watch({ pollMs = 2_000, fsWatch: useFsWatch = true } = {}) {
      if (path === undefined) return () => {};
      let timer: ReturnType<typeof setTimeout> | undefined;
      const schedule = () => {
        clearTimeout(timer);
        timer = setTimeout(() => void reload('change'), DEBOUNCE_MS);
        timer.unref();
      };
      let watcher: FSWatcher | undefined;
      if (useFsWatch) {
        try {
          watcher = fsWatch(dirname(path), { persistent: false }, (_event, name) => {
            if (name === null || name === basename(path)) schedule();
          });
          watcher.on('error', (err) => {
            logger.warn('tokens-file: fs.watch stopped; the periodic check goes on', { path, error: describe(err) });
            watcher?.close();
          });
        } catch (err) {
          logger.warn('tokens-file: fs.watch unavailable; relying on the periodic check', {
            path,
            error: describe(err),
          });
        }
      }
      // The baseline is taken now and one re-read follows (a no-op when nothing changed): a change made before
      // this point is caught by that re-read, any later one by the watch or the stat.
      let polling = true;
      let last: string | undefined;
      void signature(path)
        .then((sig) => (last = sig))
        .finally(() => (polling = false));
      schedule();
      const poll = setInterval(() => {
        if (polling) return;
        polling = true;
        void signature(path)
          .then((sig) => {
            if (sig !== last) schedule();
            last = sig;
          })
          .finally(() => (polling = false));
      }, pollMs);
      poll.unref();
      return () => {
        clearInterval(poll);
        clearTimeout(timer);
        watcher?.close();
      };
    },
  };
}

async function signature(path: string): Promise<string> {
  try {
    const s = await stat(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch (err) {
    return `error: ${(err as { code?: string }).code ?? 'unknown'}`;
  }
}
