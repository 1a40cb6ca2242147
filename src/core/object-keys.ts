/**
 * Every store key the core uses, in one place. Names are encoded into a single key segment so that names nested in
 * each other (`boot/x` and `boot/x/y`, refused anyway) could never collide with a name's own records.
 *
 *   data/<uuid>                        bytes of one ingest, immutable
 *   blobs/<sha256>                     index: sha256 -> data key (create-only; first ingest of those bytes wins)
 *   heads/<enc(name)>.json             hint: a copy of the latest pointer record (readers probe forward from it)
 *   names/<enc(name)>/ptr/<gen>.json   pointer log, create-only, generation zero-padded
 *   names/<enc(name)>/status.json      last-writer-wins status, written by lease holders
 *   leases/<enc(name)>/<urlhash>/<epoch>.json   fetch leases (cross-process coalescing)
 *   sites/<site>/cfg/<enc(path)>.json  boot-config record of one site (last writer wins; tombstone on delete)
 *   events/<seq>.json                  change log: what changed, create-only, seq zero-padded (see events.ts)
 *   events-head.json                   hint: the latest seq (readers and writers probe forward from it)
 */

export const enc = (name: string) => encodeURIComponent(name);
export const dec = (segment: string) => decodeURIComponent(segment);

const GEN_WIDTH = 12;
const EPOCH_WIDTH = 10;
const SEQ_WIDTH = 16;

export const keys = {
  data: (id: string) => `data/${id}`,
  blob: (sha256: string) => `blobs/${sha256}`,
  headsPrefix: 'heads/',
  head: (name: string) => `heads/${enc(name)}.json`,
  /** Heads of names nested under `name/` (for the directory-collision rule). */
  headsUnder: (name: string) => `heads/${enc(`${name}/`)}`,
  nameFromHead: (key: string) => dec(key.slice('heads/'.length, -'.json'.length)),
  pointerPrefix: (name: string) => `names/${enc(name)}/ptr/`,
  pointer: (name: string, generation: number) =>
    `names/${enc(name)}/ptr/${String(generation).padStart(GEN_WIDTH, '0')}.json`,
  generationFromPointer: (key: string) => Number(key.slice(key.lastIndexOf('/') + 1, -'.json'.length)),
  status: (name: string) => `names/${enc(name)}/status.json`,
  leasesOfName: (name: string) => `leases/${enc(name)}/`,
  leasePrefix: (name: string, urlHash: string) => `leases/${enc(name)}/${urlHash}/`,
  lease: (name: string, urlHash: string, epoch: number) =>
    `leases/${enc(name)}/${urlHash}/${String(epoch).padStart(EPOCH_WIDTH, '0')}.json`,
  configsPrefix: (site: string) => `sites/${site}/cfg/`,
  config: (site: string, path: string) => `sites/${site}/cfg/${enc(path)}.json`,
  configPathFromKey: (site: string, key: string) => dec(key.slice(`sites/${site}/cfg/`.length, -'.json'.length)),
  epochFromLease: (key: string) => Number(key.slice(key.lastIndexOf('/') + 1, -'.json'.length)),
  eventsPrefix: 'events/',
  event: (seq: number) => `events/${String(seq).padStart(SEQ_WIDTH, '0')}.json`,
  seqFromEvent: (key: string) => Number(key.slice('events/'.length, -'.json'.length)),
  eventsHead: 'events-head.json',
};
