/**
 * Every store key the core uses, in one place. A name's records sit under its components plus a "~" segment (see
 * `nk`), so names nested in each other (`boot/x` and `boot/x/y`, refused anyway) never collide.
 *
 *   data/<uuid>                        bytes of one ingest, immutable
 *   blobs/<sha256>                     index: sha256 -> data key (create-only; first ingest of those bytes wins)
 *   heads/<name>/~.json                hint: a copy of the latest pointer record (readers probe forward from it)
 *   names/<name>/~/ptr/<gen>.json      pointer log, create-only, generation zero-padded
 *   names/<name>/~/status.json         last-writer-wins status, written by lease holders
 *   names/<name>/~/resume.json         a cut-off download's progress (Workers: multipart upload id, parts, offset)
 *   leases/<name>/~/<urlhash>/<epoch>.json   fetch leases (cross-process coalescing)
 *   sites/<site>/cfg/<enc(path)>.json  boot-config record of one site (last writer wins; tombstone on delete)
 *   sites/<site>/report.json           the latest report of the site's agent (last writer wins; site-reports.ts)
 *   events/<seq>.json                  change log: what changed, create-only, seq zero-padded (see events.ts)
 *   events-head.json                   hint: the latest seq (readers and writers probe forward from it)
 *   catalog.json                       hint: every name's pointer record as of one seq (readers apply the log after it)
 *   gc/marks.json                      store GC: when each unreferenced blob / data object was first seen (store-gc.ts)
 *   checksums/<urlhash>.json           an upstream checksum document's entries and validators (see checksum-check.ts)
 */

export const enc = (name: string) => encodeURIComponent(name);

/**
 * A boot-file name as key segments: its own components (already key-safe: [A-Za-z0-9._+=@,-], no "." or ".."
 * segments) followed by a "~" segment, which no name component can be. So `boot/x` and `boot/x/y` never share
 * records, every segment stays within a file system's 255-byte limit whatever the name length DESIGN.md allows
 * (1024 bytes), and "~" sorting after every allowed character puts a name's own head after its descendants.
 */
const nk = (name: string) => `${name}/~`;
export const dec = (segment: string) => decodeURIComponent(segment);

const GEN_WIDTH = 12;
const EPOCH_WIDTH = 10;
const SEQ_WIDTH = 16;

export const keys = {
  dataPrefix: 'data/',
  data: (id: string) => `data/${id}`,
  blobsPrefix: 'blobs/',
  blob: (sha256: string) => `blobs/${sha256}`,
  shaFromBlob: (key: string) => key.slice('blobs/'.length),
  headsPrefix: 'heads/',
  head: (name: string) => `heads/${nk(name)}.json`,
  /** Heads of names nested under `name/` (for the directory-collision rule). */
  headsUnder: (name: string) => `heads/${name}/`,
  /** Heads of every name starting with `start` (the names fetched under a prefix: `boot/x-`, `boot/`). */
  headsStarting: (start: string) => `heads/${start}`,
  isHead: (key: string) => key.startsWith('heads/') && key.endsWith('/~.json'),
  nameFromHead: (key: string) => key.slice('heads/'.length, -'/~.json'.length),
  namesPrefix: 'names/',
  /** The name whose records `key` (under `names/`) is one of: `~` cannot occur in a name, so the first `/~/` ends it. */
  nameFromRecord: (key: string) => key.slice('names/'.length, key.indexOf('/~/')),
  pointerPrefix: (name: string) => `names/${nk(name)}/ptr/`,
  pointer: (name: string, generation: number) =>
    `names/${nk(name)}/ptr/${String(generation).padStart(GEN_WIDTH, '0')}.json`,
  generationFromPointer: (key: string) => Number(key.slice(key.lastIndexOf('/') + 1, -'.json'.length)),
  status: (name: string) => `names/${nk(name)}/status.json`,
  resume: (name: string) => `names/${nk(name)}/resume.json`,
  leasesPrefix: 'leases/',
  leasesOfName: (name: string) => `leases/${nk(name)}/`,
  leasePrefix: (name: string, urlHash: string) => `leases/${nk(name)}/${urlHash}/`,
  lease: (name: string, urlHash: string, epoch: number) =>
    `leases/${nk(name)}/${urlHash}/${String(epoch).padStart(EPOCH_WIDTH, '0')}.json`,
  sitesPrefix: 'sites/',
  isConfig: (key: string) => /^sites\/[^/]+\/cfg\/[^/]+\.json$/.test(key),
  configsPrefix: (site: string) => `sites/${site}/cfg/`,
  config: (site: string, path: string) => `sites/${site}/cfg/${enc(path)}.json`,
  siteReport: (site: string) => `sites/${site}/report.json`,
  configPathFromKey: (site: string, key: string) => dec(key.slice(`sites/${site}/cfg/`.length, -'.json'.length)),
  epochFromLease: (key: string) => Number(key.slice(key.lastIndexOf('/') + 1, -'.json'.length)),
  eventsPrefix: 'events/',
  event: (seq: number) => `events/${String(seq).padStart(SEQ_WIDTH, '0')}.json`,
  seqFromEvent: (key: string) => Number(key.slice('events/'.length, -'.json'.length)),
  eventsHead: 'events-head.json',
  catalogSnapshot: 'catalog.json',
  gcMarks: 'gc/marks.json',
  checksums: (urlHash: string) => `checksums/${urlHash}.json`,
};
