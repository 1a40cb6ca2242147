import { PreconditionFailedError } from './errors.js';
import { keys } from './object-keys.js';
import { getJson, putJson, type ObjectStore } from '../storage/object-store.js';

/**
 * Content-addressed bytes: every ingest lands under a fresh `data/<id>` key, then `blobs/<sha256>` is created
 * (create-only) to point at it. The first ingest of some bytes wins; later ones drop their copy and share it.
 */
export async function indexBlob(store: ObjectStore, sha256: string, size: number, dataKey: string): Promise<string> {
  const record = { sha256, size, key: dataKey };
  try {
    await putJson(store, keys.blob(sha256), record, { ifNoneMatch: '*' });
    return dataKey;
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err;
  }
  const existing = await getJson<typeof record>(store, keys.blob(sha256));
  const meta = existing ? await store.head(existing.key) : null;
  if (existing && meta && meta.size === size) {
    await store.delete(dataKey);
    return existing.key;
  }
  // An index pointing at missing or wrong-sized bytes (a crash or an operator's rm): repair it with ours.
  await putJson(store, keys.blob(sha256), record);
  return dataKey;
}

/** Stores small bytes held in memory (boot configs) and returns their data key. */
export async function putSmallBlob(
  store: ObjectStore,
  bytes: Uint8Array,
  sha256: string,
  newId: () => string,
): Promise<string> {
  const index = await getJson<{ key: string; size: number }>(store, keys.blob(sha256));
  if (index && index.size === bytes.byteLength && (await store.head(index.key))) return index.key;
  const dataKey = keys.data(newId());
  await store.put(dataKey, bytes);
  return indexBlob(store, sha256, bytes.byteLength, dataKey);
}
