/**
 * Issue acceptance for boot configs: with `serve --tftp-root`, a config Foreman posts appears in the TFTP root
 * within seconds with exactly the posted bytes (read back through tftpd-hpa, as PXELinux reads it), DELETE removes
 * it, and an agent of a second site writing the same MAC never touches the first site's root.
 */
import { execFile } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServeProcess, type ServeProcess } from '../helpers/serve-process.js';
import { assertTftpTools, startTftpd, tftpGet, type Tftpd } from '../helpers/tftp.js';
import { waitFor } from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const MAC = 'aa:bb:cc:dd:ee:ff';
const FILE = 'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff';
const CONFIG =
  'DEFAULT linux\nLABEL linux\n  KERNEL boot/t-vmlinuz\n  APPEND initrd=boot/t-initrd.img ks=http://x/ks\n';

function runAgentOnce(args: string[]) {
  return new Promise<{ code: number; out: string }>((resolve) => {
    execFile(process.execPath, [CLI, 'agent', '--once', ...args], { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
  });
}

describe('pxeconfig routes -> agent -> TFTP root', () => {
  let dir: string;
  let root: string;
  let eastRoot: string;
  let serve: ServeProcess;
  let tftpd: Tftpd;

  const post = (path: string, form: Record<string, string>) =>
    fetch(`${serve.url}${path}`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  const exists = (path: string) =>
    lstat(path).then(
      () => true,
      () => false,
    );

  beforeAll(async () => {
    assertTftpTools();
    dir = await mkdtemp(join(tmpdir(), 'pxecache-cfg-e2e-'));
    root = join(dir, 'tftpboot');
    eastRoot = join(dir, 'east-tftpboot');
    await mkdir(root);
    await mkdir(eastRoot);
    // An operator's file the agent must never touch, whatever Foreman deletes.
    await mkdir(join(root, 'pxelinux.cfg'));
    await writeFile(join(root, 'pxelinux.cfg/01-11-22-33-44-55-66'), 'operator config\n');
    serve = await startServeProcess(join(dir, 'store'), [
      '--tftp-root',
      root,
      '--agent-interval',
      '0.2',
      '--sites',
      'east,west',
    ]);
    tftpd = await startTftpd(root);
  });
  afterAll(async () => {
    await tftpd?.stop();
    await serve?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes the posted config into the root within seconds, readable over TFTP, and DELETE removes it', async () => {
    expect((await post(`/tftp/PXELinux/${MAC}`, { pxeconfig: CONFIG })).status).toBe(200);
    await waitFor(`${FILE} written`, async () => {
      const got = await readFile(join(root, FILE), 'utf8').catch(() => null);
      return { done: got === CONFIG, value: got };
    });
    expect((await tftpGet(tftpd.port, FILE))?.toString('utf8')).toBe(CONFIG);

    expect((await post(`/tftp/PXELinux/${MAC}`, { pxeconfig: `${CONFIG}# v2\n` })).status).toBe(200);
    await waitFor(`${FILE} rewritten`, async () => {
      const got = await readFile(join(root, FILE), 'utf8').catch(() => null);
      return { done: got === `${CONFIG}# v2\n`, value: got };
    });

    const del = await fetch(`${serve.url}/tftp/PXELinux/${MAC}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    await waitFor(`${FILE} removed`, async () => {
      const present = await exists(join(root, FILE));
      return { done: !present, value: present };
    });
    expect(await readFile(join(root, 'pxelinux.cfg/01-11-22-33-44-55-66'), 'utf8')).toBe('operator config\n');
    // Nothing but the configs and the operator's file: the agent's state lives outside the root.
    expect((await readdir(root, { recursive: true })).sort()).toEqual([
      'pxelinux.cfg',
      'pxelinux.cfg/01-11-22-33-44-55-66',
    ]);
  });

  it('a second site writing the same MAC reaches only its own agent root', async () => {
    expect((await post(`/sites/east/tftp/PXELinux/${MAC}`, { pxeconfig: 'east config\n' })).status).toBe(200);
    const east = await runAgentOnce(['--source', serve.url, '--site', 'east', '--tftp-root', eastRoot]);
    expect(east.code, east.out).toBe(0);
    expect(await readFile(join(eastRoot, FILE), 'utf8')).toBe('east config\n');
    expect(await exists(join(root, FILE))).toBe(false);

    expect((await post(`/tftp/PXELinux/${MAC}`, { pxeconfig: 'default config\n' })).status).toBe(200);
    await waitFor('default site config written', async () => {
      const got = await readFile(join(root, FILE), 'utf8').catch(() => null);
      return { done: got === 'default config\n', value: got };
    });
    const again = await runAgentOnce(['--source', serve.url, '--site', 'east', '--tftp-root', eastRoot]);
    expect(again.code, again.out).toBe(0);
    expect(await readFile(join(eastRoot, FILE), 'utf8')).toBe('east config\n');
  });

  // smart-proxy server.rb: every variant's pxeconfig_file and pxe_default, as files on disk at the edge.
  it('writes every variant under smart-proxy file names, in a root of its own site', async () => {
    const westRoot = join(dir, 'west-tftpboot');
    await mkdir(westRoot);
    const mac = 'AA:BB:CC:DD:EE:FF';
    for (const variant of ['Syslinux', 'PXELinux', 'PXEGrub', 'PXEGrub2', 'ZTP', 'POAP', 'iPXE'])
      expect((await post(`/sites/west/tftp/${variant}/${mac}`, { pxeconfig: `${variant} host\n` })).status).toBe(200);
    for (const variant of ['PXELinux', 'PXEGrub', 'PXEGrub2', 'iPXE'])
      expect((await post(`/sites/west/tftp/${variant}/create_default`, { menu: `${variant} menu\n` })).status).toBe(
        200,
      );
    const run = await runAgentOnce(['--source', serve.url, '--site', 'west', '--tftp-root', westRoot]);
    expect(run.code, run.out).toBe(0);
    const files = (await readdir(westRoot, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name).slice(westRoot.length + 1))
      .sort();
    expect(files).toEqual(
      [
        'grub/01-AA-BB-CC-DD-EE-FF',
        'grub/efidefault',
        'grub/menu.lst',
        'grub/menu.lst.01AABBCCDDEEFF',
        'grub2/grub.cfg',
        'grub2/grub.cfg-01-aa-bb-cc-dd-ee-ff',
        'grub2/grub.cfg-aa:bb:cc:dd:ee:ff',
        'poap.cfg/AABBCCDDEEFF',
        'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff',
        'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff.ipxe',
        'pxelinux.cfg/default',
        'pxelinux.cfg/default.ipxe',
        'ztp.cfg/AABBCCDDEEFF',
        'ztp.cfg/AABBCCDDEEFF.cfg',
      ].sort(),
    );
    // Syslinux and PXELinux share a file: the later write wins, as on smart-proxy.
    expect(await readFile(join(westRoot, 'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff'), 'utf8')).toBe('PXELinux host\n');
    expect(await readFile(join(westRoot, 'grub2/grub.cfg-aa:bb:cc:dd:ee:ff'), 'utf8')).toBe('PXEGrub2 host\n');
    expect(await readFile(join(westRoot, 'grub/efidefault'), 'utf8')).toBe('PXEGrub menu\n');
  });
});
