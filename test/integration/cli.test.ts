import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';

const run = (args: string[], env: Record<string, string> = {}) => runCli(args, env);

describe('the pxecache bin', () => {
  it("runs by itself (executable, shebang) with the node flags that keep a transfer's memory flat", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pxecache-bin-'));
    try {
      // Preloaded through NODE_OPTIONS, the way an operator's environment would reach the process.
      const probe = join(dir, 'argv.mjs');
      await writeFile(probe, 'process.stderr.write(JSON.stringify(process.execArgv) + "\\n");\n');
      const out = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
        execFile(
          CLI,
          ['--version'],
          { env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: `--import ${probe}` }, timeout: 20_000 },
          (err, stdout, stderr) => (err ? reject(err) : resolve({ stdout, stderr })),
        ),
      );
      expect(out.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
      const execArgv = JSON.parse(out.stderr.trim().split('\n')[0]!) as string[];
      expect(execArgv).toEqual(expect.arrayContaining(['--max-semi-space-size=1', '--no-liftoff']));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('pxecache CLI (built dist/, as installed)', () => {
  let dir: string;
  let upstream: Server;
  let base: string;
  const bytes = Buffer.from('kernel bytes '.repeat(1000));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pxecache-cli-'));
    upstream = createServer((req, res) => {
      if (req.url === '/images/vmlinuz')
        res.writeHead(200, { 'content-length': bytes.length, etag: '"v1"' }).end(bytes);
      else res.writeHead(404).end('<html>not found</html>');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    upstream.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('prints help for every command with each option and its environment variable', async () => {
    for (const command of ['serve', 'agent', 'fetch', 'import', 'export']) {
      const { code, stdout } = await run([command, '--help']);
      expect(code).toBe(0);
      expect(stdout).toContain(`usage: pxecache ${command}`);
      expect(stdout).toMatch(/PXECACHE_[A-Z_]+/);
    }
  });

  it('reports every configuration problem at once, naming the option, with exit 2', async () => {
    const { code, stderr } = await run(['serve', '--port', 'eighty', '--store', 'ftp://x', '--bogus', '1']);
    expect(code).toBe(2);
    expect(stderr).toContain('--bogus: unknown option');
    const second = await run(['serve', '--port', 'eighty', '--store', 'ftp://x']);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/--port: /);
    expect(second.stderr).toMatch(/--store: must be file:/);
  });

  it('fails an agent without --source, naming the option', async () => {
    const { code, stderr } = await run(['agent', '--tftp-root', join(dir, 'root')]);
    expect(code).toBe(2);
    expect(stderr).toContain('--source: is required');
  });

  it('fetch: downloads once into a file store, prints the ready status, exit 0', async () => {
    const store = join(dir, 'store-ok');
    const { code, stdout } = await run([
      'fetch',
      '--store',
      `file:${store}`,
      '--prefix',
      'boot/t',
      '--url',
      `${base}/images/vmlinuz`,
    ]);
    expect(code).toBe(0);
    const status = JSON.parse(stdout) as { state: string; sha256: string; name: string };
    expect(status.state).toBe('ready');
    expect(status.name).toBe('boot/t-vmlinuz');
    expect(status.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('fetch: takes its options from PXECACHE_* variables too', async () => {
    const store = join(dir, 'store-env');
    const { code, stdout } = await run(['fetch'], {
      PXECACHE_STORE: `file:${store}`,
      PXECACHE_PREFIX: 'boot/e',
      PXECACHE_URL: `${base}/images/vmlinuz`,
    });
    expect(code).toBe(0);
    expect((JSON.parse(stdout) as { name: string }).name).toBe('boot/e-vmlinuz');
  });

  it('fetch: an upstream 404 is exit 1 with a failed status naming the code', async () => {
    const { code, stdout } = await run([
      'fetch',
      '--store',
      `file:${join(dir, 'store-404')}`,
      '--prefix',
      'boot/t',
      '--url',
      `${base}/missing/vmlinuz`,
    ]);
    expect(code).toBe(1);
    const status = JSON.parse(stdout) as { state: string; error: { code: string } };
    expect(status.state).toBe('failed');
    expect(status.error.code).toBe('upstream-status');
  });

  it.each([
    ['../x', 'http://127.0.0.1:1/vmlinuz', 'prefix'],
    ['/abs', 'http://127.0.0.1:1/vmlinuz', 'prefix'],
    ['boot/t', 'file:///etc/passwd', 'path'],
    ['boot/t', 'gopher://x/y', 'path'],
  ])('fetch: bad input %s %s is exit 2 naming %s, and creates nothing', async (prefix, url, field) => {
    const store = join(dir, `store-bad-${field}-${Math.random().toString(36).slice(2)}`);
    const { code, stderr } = await run(['fetch', '--store', `file:${store}`, '--prefix', prefix, '--url', url]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${field}:`);
    await expect(readdir(store)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
