/**
 * Respin sets on the fetcher side (core/respin-sets.ts): a job that finds upstream changed for a published name
 * revalidates the other published names of its prefix, so they are `fetching` before it publishes. Against a real
 * upstream on loopback.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFetcher, type Fetcher, type FetcherDeps } from '../../../src/core/fetcher.js';
import { setPrefixOf } from '../../../src/core/respin-sets.js';
import type { FileStatus } from '../../../src/core/records.js';
import { createMemoryStore } from '../../../src/storage/memory-store.js';
import { sha256 } from '../../helpers/api.js';
import { loopbackClient, testFetcherDeps } from '../../helpers/fetcher-deps.js';
import { createUpstream, type Upstream } from '../../helpers/upstream.js';
import { waitFor } from '../../helpers/wait.js';

let upstream: Upstream;
let client: ReturnType<typeof loopbackClient>;
beforeEach(async () => {
  upstream = await createUpstream();
  client = loopbackClient();
});
afterEach(async () => {
  await client.close();
  await upstream.close();
});

const deps = (store: FetcherDeps['store']): FetcherDeps => testFetcherDeps(store, client, { followPollMs: 20 });

const until = (fetcher: Fetcher, name: string, ok: (s: FileStatus | null) => boolean) =>
  waitFor(
    `${name} in the wanted state`,
    async () => {
      const status = await fetcher.status(name);
      return { done: ok(status), value: status as FileStatus };
    },
    { timeoutMs: 10_000, intervalMs: 5 },
  );

const published = async (fetcher: Fetcher, prefix: string, path: string) => {
  const status = await (await fetcher.submit({ prefix, path: upstream.url(path) })).done;
  expect(status.state).toBe('ready');
  return status;
};

describe('setPrefixOf', () => {
  it('gives back the prefix of DESIGN.md "Names", with and without a trailing "/"', () => {
    const url = (file: string) => `http://mirror/os/images/pxeboot/${file}`;
    expect(setPrefixOf('boot/centos-9-AbCd-vmlinuz', 'vmlinuz', url('vmlinuz'))).toBe('boot/centos-9-AbCd');
    expect(setPrefixOf('boot/centos-9-AbCd-initrd.img', 'initrd.img', url('initrd.img'))).toBe('boot/centos-9-AbCd');
    expect(setPrefixOf('boot/media/vmlinuz', 'vmlinuz', url('vmlinuz'))).toBe('boot/media/');
    expect(setPrefixOf('boot/x-vmlinuz', 'x-vmlinuz', url('x-vmlinuz'))).toBe('boot/');
    expect(setPrefixOf('vmlinuz', 'vmlinuz', url('vmlinuz'))).toBeNull();
  });

  it('puts a name chosen by the caller ({name, url}: not the URL file name) in no set', () => {
    expect(setPrefixOf('boot/x-vmlinuz', 'x-vmlinuz', 'http://mirror/os/vmlinuz')).toBeNull();
    expect(setPrefixOf('boot/x-vmlinuz', 'x-vmlinuz', 'http://mirror/os/%zz')).toBeNull();
  });
});

describe('a respin found for one name of a set', () => {
  it('revalidates the other members, which turn fetching before it publishes, and publishes them once each', async () => {
    const store = createMemoryStore();
    const fetcher = createFetcher(deps(store));
    upstream.set('/os/vmlinuz', 'kernel v1');
    upstream.set('/os/initrd.img', 'initrd v1');
    upstream.set('/other/vmlinuz', 'other v1');
    await published(fetcher, 'boot/t', '/os/vmlinuz');
    await published(fetcher, 'boot/t', '/os/initrd.img');
    // Same start of name ("boot/t-"), another prefix: not a member.
    await published(fetcher, 'boot/t-other', '/other/vmlinuz');
    const otherRequests = upstream.count('/other/vmlinuz');

    let release!: () => void;
    upstream.set('/os/vmlinuz', 'kernel v2 '.repeat(1000), { bodyGate: new Promise<void>((r) => (release = r)) });
    upstream.set('/os/initrd.img', 'initrd v2');
    const kernel = await fetcher.submit({ prefix: 'boot/t', path: upstream.url('/os/vmlinuz') });
    // Nobody asked for the initrd: its revalidation was started by the kernel's job.
    const seen = await until(fetcher, 'boot/t-initrd.img', (s) => s?.state === 'fetching' || s?.generation === 2);
    expect(seen.state).toBe('fetching');
    expect((await fetcher.status('boot/t-vmlinuz'))?.sha256).toBe(sha256('kernel v1'));
    release();
    expect((await kernel.done).sha256).toBe(sha256('kernel v2 '.repeat(1000)));
    const initrd = await until(fetcher, 'boot/t-initrd.img', (s) => s?.state === 'ready' && s.generation === 2);
    expect(initrd.sha256).toBe(sha256('initrd v2'));

    // No storm: the initrd's own change did not ask for the kernel again, and the other prefix was left alone.
    await new Promise((r) => setTimeout(r, 200));
    expect(upstream.downloads('/os/vmlinuz')).toBe(2);
    expect(upstream.downloads('/os/initrd.img')).toBe(2);
    expect(upstream.count('/other/vmlinuz')).toBe(otherRequests);
  });

  it('an unchanged upstream (304) asks nothing of the other members', async () => {
    const store = createMemoryStore();
    const fetcher = createFetcher(deps(store));
    upstream.set('/os/vmlinuz', 'kernel v1');
    upstream.set('/os/initrd.img', 'initrd v1');
    await published(fetcher, 'boot/t', '/os/vmlinuz');
    await published(fetcher, 'boot/t', '/os/initrd.img');
    const initrdRequests = upstream.count('/os/initrd.img');
    await published(fetcher, 'boot/t', '/os/vmlinuz');
    await new Promise((r) => setTimeout(r, 200));
    expect(upstream.count('/os/initrd.img')).toBe(initrdRequests);
  });

  it('a member under a "/" prefix is revalidated under its own name', async () => {
    const store = createMemoryStore();
    const fetcher = createFetcher(deps(store));
    upstream.set('/os/vmlinuz', 'kernel v1');
    upstream.set('/os/initrd.img', 'initrd v1');
    await published(fetcher, 'boot/media/', '/os/vmlinuz');
    await published(fetcher, 'boot/media/', '/os/initrd.img');
    upstream.set('/os/vmlinuz', 'kernel v2');
    upstream.set('/os/initrd.img', 'initrd v2');
    await published(fetcher, 'boot/media/', '/os/vmlinuz');
    const initrd = await until(fetcher, 'boot/media/initrd.img', (s) => s?.state === 'ready' && s.generation === 2);
    expect(initrd.sha256).toBe(sha256('initrd v2'));
    expect(await store.list('heads/boot/media/')).toMatchObject({
      keys: ['heads/boot/media/initrd.img/~.json', 'heads/boot/media/vmlinuz/~.json'],
    });
  });
});
