/**
 * The Worker's settings (src/runtime/workers/config.ts): every problem at once, each naming the variable the
 * operator set (`PXECACHE_*`), never a `serve` flag they cannot pass on Workers.
 */
import { describe, expect, it } from 'vitest';
import { tokenListEntry } from '../../../src/core/auth.js';
import { ConfigError } from '../../../src/core/errors.js';
import { parseWorkersConfig, workersAuth } from '../../../src/runtime/workers/config.js';
import { sha256 } from '../../helpers/api.js';

const TOKENS = tokenListEntry({ id: 'ops', sha256: sha256('pxc_ops'), scopes: ['admin'] });

function issues(run: () => unknown): readonly string[] {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('accepted');
}

describe('Workers settings', () => {
  it('reads PXECACHE_* variables with the serve defaults', () => {
    const config = parseWorkersConfig({ PXECACHE_TOKENS: TOKENS, PXECACHE_KEEP_VERSIONS: '5', OTHER: 'x' });
    expect(config).toMatchObject({ 'keep-versions': 5, 'max-redirects': 5, 'log-level': 'info', tokens: TOKENS });
    expect(workersAuth(config)).toMatchObject({ requireToken: true, openSmartProxy: false });
  });

  it('reports every bad variable at once by its name', () => {
    const found = issues(() => parseWorkersConfig({ PXECACHE_KEEP_VERSIONS: '1', PXECACHE_LOG_LEVEL: 'loud' }));
    expect(found).toHaveLength(2);
    expect(found[0]).toMatch(/^PXECACHE_KEEP_VERSIONS: /);
    expect(found[1]).toMatch(/^PXECACHE_LOG_LEVEL: /);
  });

  it('refuses to run without tokens, and names PXECACHE_TOKENS (not --tokens) for a bad entry', () => {
    expect(issues(() => workersAuth(parseWorkersConfig({})))[0]).toMatch(/^PXECACHE_TOKENS: .*wrangler secret put/);
    const bad = issues(() => workersAuth(parseWorkersConfig({ PXECACHE_TOKENS: 'ops:root:abc' })));
    expect(bad.join('\n')).toContain('PXECACHE_TOKENS');
    expect(bad.join('\n')).not.toContain('--');
  });
});
