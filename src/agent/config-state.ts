/**
 * Which boot-config paths the agent wrote, and with which bytes: `<stateDir>/configs-<site>.json`, outside the TFTP
 * root (DESIGN.md "Edge layout": the root holds nothing but the layout). Written atomically (temp + fsync + rename).
 */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PxeError, describe } from '../core/errors.js';
import { isSha256, tmpName } from './layout.js';
import { fsyncDir, isNotFound } from './safe-dirs.js';

/** path -> sha256 the agent wrote there. */
export type OwnedConfigs = Map<string, string>;

export function configStateFile(stateDir: string, site: string): string {
  return join(stateDir, `configs-${site}.json`);
}

export async function loadConfigState(file: string): Promise<OwnedConfigs> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isNotFound(err)) return new Map();
    throw err;
  }
  let files: unknown;
  let why = 'no "files" object of path -> sha256';
  try {
    files = (JSON.parse(text) as { files?: unknown } | null)?.files;
  } catch (err) {
    why = describe(err);
  }
  const entries = files !== null && typeof files === 'object' ? Object.entries(files) : null;
  if (!entries || !entries.every(([, sha]) => typeof sha === 'string' && isSha256(sha))) {
    // Guessing would either delete files that are not ours or orphan ours: stop and let the operator decide.
    throw new PxeError('agent-state', `[agent] ${file}: not a config state file (${why}); fix or remove it`);
  }
  return new Map(entries as [string, string][]);
}

export async function saveConfigState(file: string, site: string, owned: OwnedConfigs): Promise<void> {
  const files = Object.fromEntries([...owned].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const dir = join(file, '..');
  const tmp = join(dir, tmpName());
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(JSON.stringify({ site, files }, null, 2) + '\n');
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
}
