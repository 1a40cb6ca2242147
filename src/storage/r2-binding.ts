/**
 * The subset of the Workers R2 binding that `r2-store.ts` uses, declared structurally so the driver type-checks under
 * the main tsconfig (DOM lib, no @cloudflare/workers-types) and imports nothing at runtime; a real `R2Bucket` is
 * assignable to `R2BucketLike` (`tsconfig.workers.json` checks that in the workerd tests). Its own file only to keep
 * the driver under ~300 lines.
 */
export interface R2ObjectLike {
  readonly key: string;
  readonly size: number;
  /** Quoted, as in HTTP (`etag` is the same without quotes). */
  readonly httpEtag: string;
}
export interface R2UploadedPartLike {
  readonly partNumber: number;
  readonly etag: string;
}
export interface R2MultipartUploadLike {
  uploadPart(partNumber: number, value: Uint8Array): Promise<R2UploadedPartLike>;
  complete(parts: R2UploadedPartLike[]): Promise<R2ObjectLike>;
  abort(): Promise<void>;
}
export interface R2BucketLike {
  head(key: string): Promise<R2ObjectLike | null>;
  get(
    key: string,
    options?: { range?: { offset: number; length?: number } },
  ): Promise<(R2ObjectLike & { readonly body: ReadableStream<Uint8Array> }) | null>;
  put(
    key: string,
    value: Uint8Array | ReadableStream<Uint8Array>,
    options?: { onlyIf?: { etagDoesNotMatch: string } },
  ): Promise<R2ObjectLike | null>;
  delete(key: string): Promise<void>;
  list(options: {
    prefix: string;
    limit: number;
    startAfter?: string;
  }): Promise<{ readonly objects: readonly R2ObjectLike[]; readonly truncated: boolean }>;
  createMultipartUpload(key: string): Promise<R2MultipartUploadLike>;
}
