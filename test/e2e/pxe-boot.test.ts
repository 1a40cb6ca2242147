/**
 * A real PXE boot through pxecache (issue 7): a QEMU VM network-boots from QEMU's user-mode TFTP server pointed at
 * the TFTP root that `pxecache serve --tftp-root` maintains. PXELINUX (placed by the test, as an operator would)
 * reads the host config Foreman posted through the pxeconfig route, then the kernel and initrd Foreman had pxecache
 * fetch from a local upstream mirror; the initrd's /init prints a marker naming its build. Three boots: the first
 * set, the set after an upstream respin of the initrd, and the same set again after a respin whose download was
 * truncated (which must fail and publish nothing).
 *
 * Needs qemu-system-x86, ipxe-qemu, pxelinux, syslinux-common and busybox-static, plus Debian's cloud kernel
 * (scripts/pxe-assets.sh); scripts/setup.sh prepares all of them and this suite fails, never skips, without them.
 * The serial logs are kept in test-artifacts/pxe-boot/.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileStatus } from '../../src/core/records.js';
import { fetchBootFile, getStatus, overHttp } from '../helpers/api.js';
import {
  LDLINUX,
  PXELINUX,
  QEMU_MAC,
  assertQemuTools,
  buildInitramfs,
  pxeBoot,
  pxeKernel,
  pxelinuxConfig,
  tail,
  type BootResult,
} from '../helpers/qemu.js';
import { startServeProcess, type ServeProcess } from '../helpers/serve-process.js';
import { createUpstream, type Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/pxe-boot/', import.meta.url));
/** Foreman's prefix shape: boot/<medium>-<12 alphanumerics>; the URL basenames complete the names. */
const PREFIX = 'boot/deb-AbCdEf123456';
const KERNEL = `${PREFIX}-vmlinuz`;
const INITRD = `${PREFIX}-initrd.img`;
const KERNEL_PATH = '/debian/install/vmlinuz';
const INITRD_PATH = '/debian/install/initrd.img';
const CONFIG_FILE = `pxelinux.cfg/01-${QEMU_MAC.replace(/:/g, '-')}`;
/** A boot takes well under a minute with TCG on a loaded 2-core machine; the bound only catches a hang. */
const BOOT_TIMEOUT_MS = 240_000;
const STEP_TIMEOUT_MS = 60_000;
const TEST_TIMEOUT_MS = BOOT_TIMEOUT_MS + 2 * STEP_TIMEOUT_MS;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('a QEMU VM PXE-boots from the TFTP root pxecache maintains', () => {
  let base: string;
  let root: string;
  let upstream: Upstream;
  let serve: ServeProcess;
  let kernel: Buffer;
  let initrdV2: Buffer;
  let v2Version: string;
  const seenVersions = new Map<string, string>(); // sha256 -> version, of every initrd published

  /** Foreman's call; smart-proxy answers 200 with an empty body once the fetch is accepted. */
  async function foremanFetches(path: string): Promise<void> {
    const res = await fetchBootFile(overHttp(serve.url), { prefix: PREFIX, path: upstream.url(path) });
    expect({ status: res.status, body: await res.text() }).toEqual({ status: 200, body: '' });
  }

  const status = async (name: string): Promise<FileStatus> => {
    const { code, body } = await getStatus(overHttp(serve.url), name);
    expect(code, JSON.stringify(body)).toBe(200);
    return body;
  };

  /** Waits for `name` to be ready with these bytes, then for the agent to point the root's link at that version. */
  async function published(name: string, bytes: Buffer, basename: string): Promise<string> {
    const sha = sha256(bytes);
    const ready = await waitFor(
      `${name} ready with sha256 ${sha}`,
      async () => {
        const s = await status(name);
        return { done: s.state === 'ready' && s.sha256 === sha, value: s };
      },
      { timeoutMs: STEP_TIMEOUT_MS, intervalMs: 100 },
    );
    const version = ready.version as string;
    await waitFor(
      `${name} linked to ${version} in the TFTP root`,
      async () => {
        const link = await readlink(join(root, name)).catch((err: Error) => err.message);
        const onDisk = await readFile(join(root, name)).catch(() => null);
        const want = `${name.slice(name.lastIndexOf('/') + 1)}-orig/${version}/${basename}`;
        return { done: link === want && onDisk !== null && sha256(onDisk) === sha, value: link };
      },
      { timeoutMs: STEP_TIMEOUT_MS, intervalMs: 100 },
    );
    return version;
  }

  async function boot(label: string): Promise<BootResult> {
    const logPath = join(ARTIFACTS, `${label}.serial.log`);
    const result = await pxeBoot(root, logPath, BOOT_TIMEOUT_MS);
    // PXELINUX read our config: the kernel it started is the pxecache name, with the initrd name on its command line.
    expect(result.log, `serial log ${logPath}:\n${tail(result.log)}`).toContain(
      `Command line: BOOT_IMAGE=${KERNEL} initrd=${INITRD} console=ttyS0 panic=-1`,
    );
    return result;
  }

  beforeAll(async () => {
    assertQemuTools();
    kernel = await pxeKernel();
    base = await mkdtemp(join(tmpdir(), 'pxecache-e2e-pxe-'));
    root = join(base, 'tftpboot');
    await mkdir(root);
    // The boot loader is the operator's, not pxecache's: the agent must leave it alone.
    await copyFile(PXELINUX, join(root, 'pxelinux.0'));
    await copyFile(LDLINUX, join(root, 'ldlinux.c32'));
    await rm(ARTIFACTS, { recursive: true, force: true });
    upstream = await createUpstream();
    serve = await startServeProcess(join(base, 'store'), ['--tftp-root', root, '--agent-interval', '0.2']);
  }, 600_000);

  afterAll(async () => {
    const errors: unknown[] = [];
    for (const stop of [() => serve?.stop(), () => upstream?.close()])
      await Promise.resolve(stop()).catch((err: unknown) => errors.push(err));
    if (base) await rm(base, { recursive: true, force: true });
    if (errors.length) throw new AggregateError(errors, 'pxe-boot cleanup failed');
  });

  it(
    'boot 1: PXELINUX loads the config, kernel and initrd pxecache published, and the initrd says v1',
    async () => {
      const initrdV1 = await buildInitramfs('v1');
      upstream.set(KERNEL_PATH, kernel);
      upstream.set(INITRD_PATH, initrdV1);
      // Foreman's order for a host build: the host's config first, then the boot files.
      const config = pxelinuxConfig(KERNEL, INITRD);
      const cfg = await fetch(`${serve.url}/tftp/PXELinux/${QEMU_MAC}`, {
        method: 'POST',
        headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ pxeconfig: config }).toString(),
      });
      expect(cfg.status).toBe(200);
      await foremanFetches(KERNEL_PATH);
      await foremanFetches(INITRD_PATH);
      await published(KERNEL, kernel, 'vmlinuz');
      seenVersions.set(sha256(initrdV1), await published(INITRD, initrdV1, 'initrd.img'));
      await waitFor(`${CONFIG_FILE} written`, async () => {
        const got = await readFile(join(root, CONFIG_FILE), 'utf8').catch(() => null);
        return { done: got === config, value: got };
      });

      const result = await boot('boot-1-v1');
      expect(result.markers, tail(result.log)).toEqual(['v1']);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'boot 2: after an upstream respin of the initrd the agent swaps the link and the VM boots v2',
    async () => {
      initrdV2 = await buildInitramfs('v2');
      upstream.set(INITRD_PATH, initrdV2);
      // Foreman fetches both files again; the kernel is unchanged upstream and stays the same version.
      const kernelBefore = (await status(KERNEL)).version;
      await foremanFetches(KERNEL_PATH);
      await foremanFetches(INITRD_PATH);
      v2Version = await published(INITRD, initrdV2, 'initrd.img');
      seenVersions.set(sha256(initrdV2), v2Version);
      expect(new Set(seenVersions.values()).size).toBe(2);
      expect(await published(KERNEL, kernel, 'vmlinuz')).toBe(kernelBefore);

      const result = await boot('boot-2-v2');
      expect(result.markers, tail(result.log)).toEqual(['v2']);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'boot 3: a truncated download of a new initrd fails, publishes nothing, and the VM still boots v2',
    async () => {
      const initrdV3 = await buildInitramfs('v3');
      const cut = Math.floor(initrdV3.byteLength / 2);
      // Content-Length announces the whole v3 file; half of it is sent, then the connection dies.
      upstream.set(INITRD_PATH, initrdV3, { truncateAt: cut });
      const before = await status(INITRD);
      await foremanFetches(INITRD_PATH);
      const failed = await waitFor(
        `${INITRD} failed`,
        async () => {
          const s = await status(INITRD);
          return { done: s.state === 'failed', value: s };
        },
        { timeoutMs: STEP_TIMEOUT_MS, intervalMs: 100 },
      );
      const last = upstream.requests.filter((r) => r.path === INITRD_PATH).at(-1);
      expect({ status: last?.status, bodyBytes: last?.bodyBytes }).toEqual({ status: 200, bodyBytes: cut });
      // undici reports a connection closed before Content-Length as a socket error: `reset`, or `truncated` when
      // the short body is noticed first (test/integration/fetch-boot-file.test.ts accepts the same two).
      expect(['truncated', 'reset'], JSON.stringify(failed.error)).toContain(failed.error?.code);
      expect({ version: failed.version, sha256: failed.sha256, generation: failed.generation }).toEqual({
        version: v2Version,
        sha256: sha256(initrdV2),
        generation: before.generation,
      });
      expect(failed.versions.map((v) => v.sha256)).not.toContain(sha256(initrdV3));

      // The edge still links v2, and no directory of the name holds anything but the two published initrds.
      const v2Link = `${INITRD.slice(INITRD.lastIndexOf('/') + 1)}-orig/${v2Version}/initrd.img`;
      expect(await readlink(join(root, INITRD))).toBe(v2Link);
      const kept = await readdir(join(root, `${INITRD}-orig`));
      for (const version of kept) {
        const bytes = await readFile(join(root, `${INITRD}-orig`, version, 'initrd.img'));
        expect(seenVersions.get(sha256(bytes)), `${INITRD}-orig/${version}`).toBe(version);
      }

      const result = await boot('boot-3-still-v2');
      expect(result.markers, tail(result.log)).toEqual(['v2']);
      expect(await readlink(join(root, INITRD))).toBe(v2Link);
    },
    TEST_TIMEOUT_MS,
  );
});
