/**
 * ftp:// installation media on Node, end to end against a real vsftpd: `POST /tftp/fetch_boot_file` with an ftp://
 * path, revalidation with SIZE/MDTM (no RETR when unchanged), new versions, failures that leave the previous version
 * serving. Every test runs through both transports (STYLE.md "Tests"). The vsftpd log is the witness for what went
 * over the wire (RETR count, completed downloads, never a REST).
 */
import { open, rm, truncate, utimes } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FileStatus } from '../../src/core/records.js';
import { createFtpUpstream } from '../../src/runtime/node/ftp-upstream.js';
import { bytesOf, fetchBootFile, getStatus, sha256 } from '../helpers/api.js';
import { createHarness, listTree, TRANSPORTS, type Harness } from '../helpers/app-harness.js';
import { gatedStore, type GatedStore } from '../helpers/store-gates.js';
import { startVsftpd, type Vsftpd } from '../helpers/vsftpd.js';
import { waitFor } from '../helpers/wait.js';
import { withoutChecksumDocuments } from '../helpers/checksum-media.js';

const KERNEL = '/images/pxeboot/vmlinuz';
const NAME = 'boot/c9-vmlinuz';
const T1 = new Date('2024-03-01T10:00:00Z');
const T2 = new Date('2024-03-01T11:00:00Z');
/** Larger than loopback socket buffers can absorb (rmem up to 32 MiB here), so a held download is really mid-way. */
const BIG = 96 * 1024 * 1024;

describe.each(TRANSPORTS)('ftp:// boot files via %s', (transport) => {
  let ftpd: Vsftpd;
  let h: Harness;
  let gated: GatedStore;
  const req = (path: string, init?: RequestInit) => h.request(path, init);

  beforeEach(async () => {
    ftpd = await startVsftpd();
    h = await createHarness({ transport, wrapStore: (store) => (gated = gatedStore(store)).store });
  });
  afterEach(async () => {
    await ftpd?.stop();
    await h?.close();
  });

  async function fetchOk(url: string): Promise<void> {
    const res = await fetchBootFile(req, { prefix: 'boot/c9', path: url });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.text()).toBe('');
  }

  async function settle(name = NAME): Promise<FileStatus> {
    await h.idle();
    const { code, body } = await getStatus(req, name);
    expect(code).toBe(200);
    return body;
  }

  async function publish(bytes: Uint8Array, mtime: Date): Promise<FileStatus> {
    await ftpd.put(KERNEL, bytes, mtime);
    await fetchOk(ftpd.url(KERNEL));
    const status = await settle();
    expect(status.state, JSON.stringify(status.error)).toBe('ready');
    expect(status.sha256).toBe(sha256(bytes));
    return status;
  }

  /** Store objects holding downloaded bytes: a failed fetch must leave none behind. */
  const dataObjects = async () => (await listTree(join(h.storeDir, 'data'))).filter((p) => !p.endsWith('/'));

  it('fetch_boot_file with an ftp:// path: 200, then ready with the sha256 of the file, read with one RETR', async () => {
    const bytes = bytesOf('ftp-kernel-1', 300 * 1024 + 7);
    await ftpd.put(KERNEL, bytes, T1);
    await fetchOk(ftpd.url(KERNEL));
    const status = await settle();
    expect(status).toMatchObject({
      name: NAME,
      url: ftpd.url(KERNEL),
      state: 'ready',
      sha256: sha256(bytes),
      size: bytes.byteLength,
      generation: 1,
      error: null,
    });
    expect(status.versions).toHaveLength(1);
    expect(withoutChecksumDocuments(await ftpd.commands('RETR'))).toEqual(['RETR images/pxeboot/vmlinuz']);
    expect(await ftpd.downloads(KERNEL)).toBe(1);
    expect(await ftpd.commands('REST')).toEqual([]);
  });

  it('an unchanged file is revalidated with SIZE and MDTM only: not downloaded again, checkedAt moves', async () => {
    const first = await publish(bytesOf('ftp-kernel-1', 200 * 1024), T1);
    const sizes = (await ftpd.commands('SIZE')).length;
    const mdtms = (await ftpd.commands('MDTM')).length;
    await new Promise((r) => setTimeout(r, 5)); // checkedAt has millisecond resolution
    await fetchOk(ftpd.url(KERNEL));
    const second = await settle();
    expect(second).toMatchObject({
      state: 'ready',
      version: first.version,
      sha256: first.sha256,
      generation: 1,
      fetchedAt: first.fetchedAt,
      error: null,
    });
    expect(Date.parse(second.checkedAt ?? '')).toBeGreaterThan(Date.parse(first.checkedAt ?? ''));
    expect(withoutChecksumDocuments(await ftpd.commands('RETR'))).toHaveLength(1);
    expect(await ftpd.downloads(KERNEL)).toBe(1);
    // The revalidation was exactly one SIZE and one MDTM.
    expect(await ftpd.commands('SIZE')).toHaveLength(sizes + 1);
    expect(await ftpd.commands('MDTM')).toHaveLength(mdtms + 1);
  });

  it('a changed file (new bytes, new mtime) is a new version, generation 2, the old one kept', async () => {
    const v1 = bytesOf('ftp-kernel-1', 200 * 1024);
    const v2 = bytesOf('ftp-kernel-2', 200 * 1024); // same size: only MDTM tells them apart
    const first = await publish(v1, T1);
    const second = await publish(v2, T2);
    expect(second.generation).toBe(2);
    expect(second.version).not.toBe(first.version);
    expect(second.versions.map((v) => v.sha256)).toEqual([sha256(v2), sha256(v1)]);
    expect(await ftpd.downloads(KERNEL)).toBe(2);
    expect(await ftpd.commands('REST')).toEqual([]);
  });

  it('a touched file with the same bytes is downloaded again but makes no new version', async () => {
    const bytes = bytesOf('ftp-kernel-1', 100 * 1024);
    const first = await publish(bytes, T1);
    await utimes(join(ftpd.root, KERNEL), T2, T2);
    await fetchOk(ftpd.url(KERNEL));
    const second = await settle();
    expect(second).toMatchObject({ state: 'ready', version: first.version, generation: 1 });
    expect(await ftpd.downloads(KERNEL)).toBe(2);
    // The new validators were recorded: the next call is a SIZE/MDTM revalidation again, no third RETR.
    await fetchOk(ftpd.url(KERNEL));
    expect((await settle()).generation).toBe(1);
    expect(await ftpd.downloads(KERNEL)).toBe(2);
  });

  it('a missing file fails with upstream-status; the previous version is still current', async () => {
    const first = await publish(bytesOf('ftp-kernel-1', 64 * 1024), T1);
    await rm(join(ftpd.root, KERNEL));
    await fetchOk(ftpd.url(KERNEL));
    const status = await settle();
    expect(status.state).toBe('failed');
    expect(status.error?.code, JSON.stringify(status.error)).toBe('upstream-status');
    expect(status.error?.message).toMatch(/404/);
    expect(status).toMatchObject({ version: first.version, sha256: first.sha256, generation: 1 });

    // A name that never had a version: failed, nothing published.
    await fetchOk(ftpd.url('/images/pxeboot/initrd.img'));
    const fresh = await settle('boot/c9-initrd.img');
    expect(fresh).toMatchObject({ state: 'failed', version: null, generation: 0 });
    expect(fresh.error?.code).toBe('upstream-status');
  });

  it('user:password in the URL are percent-decoded for the login', async () => {
    // vsftpd takes "ftp" as an anonymous user too; "%66tp" only logs in if it was decoded.
    const bytes = bytesOf('ftp-kernel-1', 1000);
    await ftpd.put(KERNEL, bytes, T1);
    const url = ftpd.url(KERNEL).replace('ftp://', 'ftp://%66tp:p%40ss@');
    await fetchOk(url);
    const status = await settle();
    expect(status.state, JSON.stringify(status.error)).toBe('ready');
    // Every login (the download, then the check of its validators) with the decoded name.
    expect(new Set(await ftpd.commands('USER'))).toEqual(new Set(['USER ftp']));
  });

  it('a transfer cut short by the server (file truncated mid-download) is not published', async () => {
    const first = await publish(bytesOf('ftp-kernel-1', 64 * 1024), T1);
    await sparseFile(join(ftpd.root, KERNEL), BIG, T2);
    const held = gated.hold((op, key) => op === 'put' && key.startsWith('data/'));
    await fetchOk(ftpd.url(KERNEL));
    await held.reached; // the download started and nothing is read: the server is blocked mid-file
    await truncate(join(ftpd.root, KERNEL), 1024 * 1024);
    held.release();
    const status = await settle();
    expect(status.state).toBe('failed');
    // vsftpd notices the short file and answers 426: the connection is lost before the announced SIZE (truncated).
    expect(status.error?.code, JSON.stringify(status.error)).toBe('truncated');
    expect(status.error?.message).toMatch(/426/);
    expect(status).toMatchObject({ version: first.version, sha256: first.sha256, generation: 1 });
    expect(await dataObjects()).toHaveLength(1);
  });

  it('a file rewritten in place during the transfer (same size, new mtime) is not published as a mix', async () => {
    const first = await publish(bytesOf('ftp-kernel-1', 64 * 1024), T1);
    const file = join(ftpd.root, KERNEL);
    await sparseFile(file, BIG, T2);
    const held = gated.hold((op, key) => op === 'put' && key.startsWith('data/'));
    await fetchOk(ftpd.url(KERNEL));
    await held.reached;
    // The tail, not yet sent, changes: without the SIZE/MDTM check after the transfer the old head and the new
    // tail would be published as a version that never existed upstream.
    const fh = await open(file, 'r+');
    await fh.write(bytesOf('new-tail', 1024 * 1024), 0, 1024 * 1024, BIG - 1024 * 1024);
    await fh.close();
    const T3 = new Date('2024-03-01T12:00:00Z');
    await utimes(file, T3, T3);
    held.release();
    const status = await settle();
    expect(status.state).toBe('failed');
    expect(status.error?.code, JSON.stringify(status.error)).toBe('upstream-changed');
    expect(status).toMatchObject({ version: first.version, generation: 1 });
    expect(await dataObjects()).toHaveLength(1);
    expect(await ftpd.commands('REST')).toEqual([]);
  });

  it('a refused connection fails with code connect', async () => {
    const port = ftpd.port;
    await ftpd.stop();
    await fetchOk(`ftp://127.0.0.1:${port}${KERNEL}`);
    const status = await settle();
    expect(status.state).toBe('failed');
    expect(status.error?.code, JSON.stringify(status.error)).toBe('connect');
  });
});

describe('ftp upstream client', () => {
  let ftpd: Vsftpd;
  const client = createFtpUpstream({ connectTimeoutMs: 5_000, idleTimeoutMs: 5_000, verifyTls: true });
  beforeEach(async () => {
    ftpd = await startVsftpd();
  });
  afterEach(async () => {
    await client.close();
    await ftpd?.stop();
  });

  it('answers 304 to the ETag it synthesized from SIZE and MDTM, 200 with content-length otherwise', async () => {
    const bytes = bytesOf('ftp-kernel-1', 5000);
    await ftpd.put(KERNEL, bytes, T1);
    const url = new URL(ftpd.url(KERNEL));
    const full = await client.request({ url, headers: {} });
    expect(full.status).toBe(200);
    expect(full.header('content-length')).toBe('5000');
    expect(full.header('etag')).toBe(`"ftp-5000-${T1.getTime()}"`);
    expect(full.header('last-modified')).toBe(T1.toUTCString());
    const chunks: Uint8Array[] = [];
    for await (const chunk of full.body) chunks.push(chunk);
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(bytes));

    const etag = full.header('etag') ?? '';
    const same = await client.request({ url, headers: { 'if-none-match': etag } });
    expect(same.status).toBe(304);
    await same.discard();
    const stale = await client.request({ url, headers: { 'if-none-match': '"ftp-5000-1"' } });
    expect(stale.status).toBe(200);
    await stale.discard();
    // The 304 sent no RETR; the full and the stale request one each.
    expect(await ftpd.commands('RETR')).toHaveLength(2);
  });

  it('an abandoned body closes the connection (the server sees the transfer aborted)', async () => {
    await ftpd.put(KERNEL, Buffer.alloc(0));
    await sparseFile(join(ftpd.root, KERNEL), BIG, T1);
    const res = await client.request({ url: new URL(ftpd.url(KERNEL)), headers: {} });
    expect(res.status).toBe(200);
    const it = res.body[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    await it.return?.();
    await waitFor('vsftpd to log the aborted transfer', async () => {
      const log = await ftpd.log();
      return { done: /FAIL DOWNLOAD/.test(log), value: log.slice(-400) };
    });
    expect(await ftpd.downloads(KERNEL)).toBe(0);
  });

  it('a server that reports success after fewer bytes than SIZE: the body ends short (the core counts it)', async () => {
    const liar = await startLyingFtpServer(bytesOf('short', 1000), 4000);
    try {
      const res = await client.request({ url: new URL(`ftp://127.0.0.1:${liar.port}${KERNEL}`), headers: {} });
      expect(res.status).toBe(200);
      expect(res.header('content-length')).toBe('4000');
      let received = 0;
      for await (const chunk of res.body) received += chunk.byteLength;
      expect(received).toBe(1000);
    } finally {
      await liar.close();
    }
  });
});

describe('ftp upstream client transport failures', () => {
  const client = createFtpUpstream({ connectTimeoutMs: 300, idleTimeoutMs: 500, verifyTls: true });
  afterEach(() => client.close());

  async function codeOf(url: string, read: boolean): Promise<string> {
    try {
      const res = await client.request({ url: new URL(url), headers: {} });
      if (read) for await (const _chunk of res.body);
      else await res.discard();
    } catch (err) {
      return (err as { code?: string }).code ?? String(err);
    }
    return 'no error';
  }

  it('a server that never greets: timeout (connect timeout)', async () => {
    const accepted: Socket[] = [];
    const silent = createServer((socket) => void accepted.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      expect(await codeOf(`ftp://127.0.0.1:${port}${KERNEL}`, false)).toBe('timeout');
    } finally {
      for (const socket of accepted) socket.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('a data connection that stalls mid-file: timeout (idle timeout)', async () => {
    const liar = await startLyingFtpServer(bytesOf('stall', 1000), 4000, 'stall');
    try {
      expect(await codeOf(`ftp://127.0.0.1:${liar.port}${KERNEL}`, true)).toBe('timeout');
    } finally {
      await liar.close();
    }
  });

  it('connections reset mid-file: reset', async () => {
    const liar = await startLyingFtpServer(bytesOf('reset', 1000), 4000, 'reset');
    try {
      expect(await codeOf(`ftp://127.0.0.1:${liar.port}${KERNEL}`, true)).toBe('reset');
    } finally {
      await liar.close();
    }
  });
});

describe('ftp:// with a lying server through the fetcher', () => {
  it('a transfer that ends early but is reported complete fails as truncated and publishes nothing', async () => {
    const h = await createHarness({ transport: 'app.request' });
    const liar = await startLyingFtpServer(bytesOf('short', 1000), 4000);
    try {
      const res = await fetchBootFile(h.request, { prefix: 'boot/c9', path: `ftp://127.0.0.1:${liar.port}${KERNEL}` });
      expect(res.status).toBe(200);
      await h.idle();
      const { body } = await getStatus(h.request, NAME);
      expect(body).toMatchObject({ state: 'failed', version: null, generation: 0 });
      expect(body.error?.code, JSON.stringify(body.error)).toBe('truncated');
      expect(await listTree(join(h.storeDir, 'data'))).toEqual([]);
    } finally {
      await liar.close();
      await h.close();
    }
  });
});

/** A sparse file of `size` bytes (zeros), world-readable, with an explicit mtime. */
async function sparseFile(path: string, size: number, mtime: Date): Promise<void> {
  const fh = await open(path, 'w', 0o644);
  await fh.truncate(size);
  await fh.close();
  await utimes(path, mtime, mtime);
}

/**
 * Faults vsftpd cannot be made to produce on demand, with just enough FTP for basic-ftp: the server announces
 * `claimedSize` with SIZE, sends `bytes` on the data connection, then
 * - `lie`: ends it and still answers "226 Transfer complete";
 * - `stall`: sends nothing more and never answers;
 * - `reset`: resets the data and the control connection (RST), as a crashing server or a middlebox would.
 */
async function startLyingFtpServer(
  bytes: Buffer,
  claimedSize: number,
  mode: 'lie' | 'stall' | 'reset' = 'lie',
): Promise<{ port: number; close(): Promise<void> }> {
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const control = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let data: Promise<Socket> | null = null;
    let buffered = '';
    const reply = (line: string) => socket.write(`${line}\r\n`);
    reply('220 liar ready');
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let nl = buffered.indexOf('\r\n'); nl !== -1; nl = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 2);
        const verb = line.split(' ')[0]?.toUpperCase();
        if (verb === 'USER') reply('230 logged in');
        else if (verb === 'SIZE') reply(`213 ${claimedSize}`);
        else if (verb === 'MDTM') reply('213 20240301100000');
        else if (verb === 'EPSV') {
          const dataServer = createServer();
          servers.push(dataServer);
          dataServer.on('connection', (d: Socket) => sockets.add(d.on('close', () => sockets.delete(d))));
          data = new Promise((resolve) => dataServer.once('connection', resolve));
          dataServer.listen(0, '127.0.0.1', () => {
            const { port } = dataServer.address() as { port: number };
            reply(`229 Entering Extended Passive Mode (|||${port}|)`);
          });
        } else if (verb === 'RETR' && data) {
          reply('150 sending');
          void data.then((d) => {
            if (mode === 'lie') d.end(bytes, () => reply('226 Transfer complete'));
            else if (mode === 'stall') d.write(bytes);
            else d.write(bytes, () => (d.resetAndDestroy(), socket.resetAndDestroy()));
          });
        } else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else if (verb === 'FEAT' || verb === 'PASV') reply('502 not implemented');
        else reply('200 ok');
      }
    });
  });
  servers.push(control);
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  const { port } = control.address() as { port: number };
  return {
    port,
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}
