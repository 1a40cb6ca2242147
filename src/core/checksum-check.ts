/**
 * Upstream checksum verification of a download before it is published (docs/integrity.md "Upstream checksums"): the
 * medium's own checksum documents (`checksums.ts`) are fetched like any upstream file (same client, URL policy,
 * redirects and user agent), cached in the store with their validators so the next look is a conditional GET, and
 * the downloaded bytes must match the first document that lists them. A mismatch is an IntegrityError (`integrity`):
 * nothing is published, the previous version keeps serving. That is also what a mirror caught mid-sync looks like
 * (a new kernel next to an old `.treeinfo`, or the reverse); the next request after the sync publishes.
 */
import { IntegrityError, StorageError, UpstreamError } from './errors.js';
import { checksumSources, parseSums, parseTreeinfo, type ChecksumSource, type Listed } from './checksums.js';
import { hashUrl } from './fetch-target.js';
import { keys } from './object-keys.js';
import type { Clock, HasherFactory, UpstreamClient } from './ports.js';
import type { VerifiedBy } from './records.js';
import { redactUrl } from './redact.js';
import { upstreamGet, type Conditional } from './upstream-get.js';
import type { UrlPolicy } from './url-policy.js';
import { getJson, putJson, type ObjectStore } from '../storage/object-store.js';

export interface ChecksumDeps {
  readonly store: ObjectStore;
  readonly upstream: UpstreamClient;
  readonly hasher: HasherFactory;
  /** Absent: MD5 cannot be checked here, so `MD5SUMS` and `md5:` entries are not used. */
  readonly md5?: HasherFactory;
  readonly clock: Clock;
  readonly policy: UrlPolicy;
  readonly maxRedirects: number;
  readonly userAgent: string;
}

/** What a download is checked against. */
export interface Downloaded {
  readonly url: URL;
  readonly sha256: string;
  /** Store key of the bytes: read back for an MD5 (the ingest hashes sha256 only). */
  readonly dataKey: string;
  readonly signal?: AbortSignal;
}

/** A checksum document as cached in the store (`checksums/<url hash>.json`). */
interface CachedDocument {
  readonly url: string;
  readonly etag: string | null;
  readonly lastModified: string | null;
  readonly checkedAt: string;
  readonly entries: Readonly<Record<string, Listed>>;
}

/** A real checksum document is a few kilobytes; a body this large at such a URL is something else. */
const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;

/**
 * Answers meaning "this medium publishes no such document": 404/410, and 403, which S3 and GCS buckets answer for a
 * missing key when listing is not allowed (many mirrors are such buckets).
 */
const ABSENT = new Set([403, 404, 410]);

/**
 * The document that vouched for the download, or null when none lists it. Throws IntegrityError on a mismatch, and
 * the document's own UpstreamError when one could not be read (5xx, timeout, reset): publishing unverified bytes
 * because a document was briefly unreachable would defeat the check, and the status code of that failure says
 * "upstream trouble, retry" (502) where `integrity` (422) says "these bytes are wrong".
 */
export async function verifyDownload(deps: ChecksumDeps, got: Downloaded): Promise<VerifiedBy | null> {
  for (const source of checksumSources(got.url, { md5: deps.md5 !== undefined })) {
    const entries = await readDocument(deps, source, got.signal);
    const listed = entries?.[source.entry];
    if (!listed) continue;
    const [algorithm, expected = ''] = listed.split(':') as [VerifiedBy['algorithm'], string];
    const md5 = deps.md5;
    if (algorithm === 'md5' && !md5) continue;
    const actual = md5 && algorithm === 'md5' ? await storedDigest(deps.store, md5, got.dataKey) : got.sha256;
    const document = redactUrl(source.url);
    if (actual !== expected)
      throw new IntegrityError(
        `[integrity] ${redactUrl(got.url)} does not match its ${algorithm} in ${document} (a mirror caught mid-sync?); nothing published`,
        expected,
        actual,
      );
    return { kind: source.kind, url: document, algorithm };
  }
  return null;
}

/** The entries of one document (revalidated against its cached copy), or null when upstream has none. */
async function readDocument(
  deps: ChecksumDeps,
  source: ChecksumSource,
  signal: AbortSignal | undefined,
): Promise<Readonly<Record<string, Listed>> | null> {
  const key = keys.checksums(await hashUrl(deps.hasher, source.url.href));
  const cachedRecord = await getJson<CachedDocument>(deps.store, key);
  // The key is a hash prefix: the record names its URL, and a different one is not ours.
  const cached = cachedRecord?.url === redactUrl(source.url) ? cachedRecord : null;
  const conditional: Conditional | null = cached ? { etag: cached.etag, lastModified: cached.lastModified } : null;
  const { response } = await upstreamGet(deps.upstream, source.url, conditional, {
    maxRedirects: deps.maxRedirects,
    policy: deps.policy,
    userAgent: deps.userAgent,
    ...(signal ? { signal } : {}),
  });
  if (response.status === 304 && cached) {
    await response.discard();
    return cached.entries;
  }
  if (response.status !== 200) {
    await response.discard();
    if (ABSENT.has(response.status)) return null;
    throw new UpstreamError('upstream-status', source.url.href, `checksum document: status ${response.status}`, {
      status: response.status,
    });
  }
  const text = await readText(source.url, response.body, response.header('content-length'));
  const entries = Object.fromEntries(
    source.kind === 'treeinfo' ? parseTreeinfo(text) : parseSums(text, source.kind === 'md5sums' ? 'md5' : 'sha256'),
  );
  const etag = response.header('etag') ?? null;
  const lastModified = response.header('last-modified') ?? null;
  if (etag || lastModified) {
    const record: CachedDocument = {
      url: redactUrl(source.url),
      etag,
      lastModified,
      checkedAt: new Date(deps.clock.now()).toISOString(),
      entries,
    };
    await putJson(deps.store, key, record);
  }
  return entries;
}

async function readText(url: URL, body: AsyncIterable<Uint8Array>, length: string | undefined): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > MAX_DOCUMENT_BYTES)
      throw new UpstreamError('upstream-status', url.href, `checksum document larger than ${MAX_DOCUMENT_BYTES} bytes`);
    chunks.push(chunk);
  }
  if (length !== undefined && /^\d+$/.test(length.trim()) && Number(length) !== size)
    throw new UpstreamError('truncated', url.href, `checksum document ended after ${size} of ${length.trim()} bytes`);
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

/** The digest of a stored object, read back (every runtime, and the Workers resumable ingest, can). */
async function storedDigest(store: ObjectStore, hasher: HasherFactory, key: string): Promise<string> {
  const object = await store.get(key);
  if (!object) throw new StorageError(store.driver, 'GET', key, 'missing right after it was written');
  const h = hasher();
  for await (const chunk of object.body) h.update(chunk);
  return h.digest();
}
