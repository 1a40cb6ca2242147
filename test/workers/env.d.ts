// The bindings vitest.config.ts gives the workers project (miniflare options, not wrangler.toml).
declare namespace Cloudflare {
  interface Env {
    /** Used by the conformance suite only: it expects an empty store at the start of each test. */
    CONFORMANCE: R2Bucket;
    BUCKET: R2Bucket;
  }
}
