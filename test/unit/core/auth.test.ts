import { describe, expect, it } from 'vitest';
import {
  authSettings,
  constantTimeEqual,
  createTokenSet,
  createTokenVerifier,
  hasScope,
  hashToken,
  isLoopback,
  isTrustedClient,
  newToken,
  noAuth,
  parseScopes,
  parseTrustedHosts,
  readTokens,
  tokenListEntry,
  tokensRequired,
  type TokenRecord,
} from '../../../src/core/auth.js';
import { nodeSha256 } from '../../../src/runtime/node/hasher.js';
import { sha256 } from '../../helpers/api.js';
import { issuesOf } from '../../helpers/config-issues.js';

const A = sha256('token-a');
const B = sha256('token-b');

describe('readTokens: the one-line form (--tokens, PXECACHE_TOKENS)', () => {
  it('parses id:scope+scope:sha256 entries, trimming blanks and lowering hex', () => {
    expect(readTokens({ list: ` site-east:read:${A} , ops:admin+fetch:${B.toUpperCase()},` })).toEqual([
      { id: 'site-east', sha256: A, scopes: ['read'] },
      { id: 'ops', sha256: B, scopes: ['admin', 'fetch'] },
    ]);
  });

  it('reports every bad entry at once, by position', () => {
    const issues = issuesOf(() =>
      readTokens({ list: `a:read:${A},b:read,c:write:${B},d:read:abc,:read:${B},e:read:pxc_abcdef` }),
    );
    expect(issues).toEqual([
      expect.stringMatching(/^--tokens entry 2 \("b"\): expected <id>:<scope>.*got 2 field/),
      expect.stringMatching(/^--tokens entry 3 \("c"\): scope\(s\) "write" not one of read, fetch, admin/),
      expect.stringMatching(/^--tokens entry 4 \("d"\): sha256 must be the 64 hex digits/),
      expect.stringMatching(/^--tokens entry 5: id "" must be/),
      // A plaintext token pasted where its hash belongs is named as such.
      expect.stringMatching(/^--tokens entry 6 \("e"\): holds a token, not its sha256/),
    ]);
  });

  it('refuses a reused id or a reused hash', () => {
    expect(issuesOf(() => readTokens({ list: `a:read:${A},a:fetch:${B}` }))).toEqual([
      '--tokens entry 2 ("a"): id "a" is already used by --tokens entry 1 ("a")',
    ]);
    expect(issuesOf(() => readTokens({ list: `a:read:${A},b:fetch:${A}` }))).toEqual([
      '--tokens entry 2 ("b"): same sha256 as --tokens entry 1 ("a")',
    ]);
  });
});

describe('readTokens: the JSON document (--tokens-file)', () => {
  const file = (doc: unknown) => ({ file: { path: '/etc/pxecache/tokens.json', text: JSON.stringify(doc) } });

  it('parses {"tokens": [...]}, comments allowed', () => {
    expect(
      readTokens(
        file({
          tokens: [
            { id: 'site-east', sha256: A, scopes: ['read'], comment: 'agent of tftp-east' },
            { id: 'ci', sha256: B, scopes: ['fetch', 'read'] },
          ],
        }),
      ),
    ).toEqual([
      { id: 'site-east', sha256: A, scopes: ['read'] },
      { id: 'ci', sha256: B, scopes: ['fetch', 'read'] },
    ]);
  });

  it('names each bad entry with its index', () => {
    const issues = issuesOf(() =>
      readTokens(
        file({
          tokens: [
            { id: 'ok', sha256: A, scopes: ['read'] },
            'nope',
            { id: 'x', sha256: B, scopes: [] },
            { id: 'y', token: 'secret', scopes: ['read'] },
            { id: 'bad id', sha256: B, scopes: ['read'] },
          ],
        }),
      ),
    );
    const at = '--tokens-file /etc/pxecache/tokens.json: tokens';
    expect(issues).toEqual([
      `${at}[1]: not an object`,
      `${at}[2] ("x"): scopes must be a non-empty list of read, fetch, admin`,
      `${at}[3] ("y"): unknown field(s) token (id, sha256, scopes, comment)`,
      expect.stringMatching(/tokens\[4\]: id "bad id" must be/),
    ]);
  });

  it('says what is wrong with the document itself', () => {
    expect(issuesOf(() => readTokens({ file: { path: 't.json', text: '{"tokens": [' } }))).toEqual([
      expect.stringMatching(/^--tokens-file t\.json: not JSON: /),
    ]);
    expect(issuesOf(() => readTokens(file([{ id: 'a' }])))).toEqual([
      '--tokens-file /etc/pxecache/tokens.json: expected {"tokens": [...]}',
    ]);
  });

  it('merges with the one-line form and catches an id defined in both', () => {
    expect(
      issuesOf(() =>
        readTokens({ list: `a:read:${A}`, ...file({ tokens: [{ id: 'a', sha256: B, scopes: ['read'] }] }) }),
      ),
    ).toEqual([
      '--tokens-file /etc/pxecache/tokens.json: tokens[0] ("a"): id "a" is already used by --tokens entry 1 ("a")',
    ]);
  });
});

describe('scopes', () => {
  const token = (scopes: TokenRecord['scopes']): TokenRecord => ({ id: 't', sha256: A, scopes });

  it('admin implies fetch and read; the others imply nothing', () => {
    expect(['read', 'fetch', 'admin'].map((s) => hasScope(token(['admin']), s as 'read'))).toEqual([true, true, true]);
    expect(hasScope(token(['fetch']), 'read')).toBe(false);
    expect(hasScope(token(['read']), 'fetch')).toBe(false);
    expect(hasScope(token(['read', 'fetch']), 'admin')).toBe(false);
  });

  it('parses --scopes of pxecache token', () => {
    expect(parseScopes('read+fetch', '--scopes')).toEqual(['read', 'fetch']);
    expect(issuesOf(() => parseScopes('read+root', '--scopes'))).toEqual([
      '--scopes: scope(s) "root" not one of read, fetch, admin',
    ]);
  });
});

describe('verification', () => {
  it('compares strings exactly, whatever their lengths', () => {
    expect(constantTimeEqual(A, A)).toBe(true);
    expect(constantTimeEqual(A, B)).toBe(false);
    expect(constantTimeEqual(A, A.slice(0, 63))).toBe(false);
    expect(constantTimeEqual(`${A}0`, A)).toBe(false);
    expect(constantTimeEqual('', '')).toBe(true);
    expect(constantTimeEqual('', 'a')).toBe(false);
    // Differs only in the last character: an early-exit compare and a full one agree here, so check the result.
    expect(constantTimeEqual(`${A.slice(0, 63)}x`, A)).toBe(false);
  });

  it('finds the record whose sha256 is the presented token hash, and nothing for anything else', async () => {
    const records: TokenRecord[] = [
      { id: 'a', sha256: A, scopes: ['read'] },
      { id: 'b', sha256: B, scopes: ['admin'] },
    ];
    const verify = createTokenVerifier(records, nodeSha256);
    expect((await verify('token-a'))?.id).toBe('a');
    expect((await verify('token-b'))?.id).toBe('b');
    expect(await verify('token-c')).toBeNull();
    // The configured hash itself is not a credential.
    expect(await verify(A)).toBeNull();
    expect(await verify('')).toBeNull();
  });

  it('reads a token set at every call, so a replaced set applies at once (rotation)', async () => {
    const set = createTokenSet([{ id: 'a', sha256: A, scopes: ['read'] }]);
    const verify = createTokenVerifier(set, nodeSha256);
    expect((await verify('token-a'))?.id).toBe('a');
    set.replace([{ id: 'b', sha256: B, scopes: ['read'] }]);
    expect(await verify('token-a')).toBeNull();
    expect((await verify('token-b'))?.id).toBe('b');
  });

  it('makes distinct prefixed tokens whose list entry verifies', async () => {
    const t1 = newToken();
    const t2 = newToken();
    expect(t1).toMatch(/^pxc_[A-Za-z0-9_-]{43}$/);
    expect(t1).not.toBe(t2);
    const entry = tokenListEntry({ id: 'ci', sha256: await hashToken(t1, nodeSha256), scopes: ['fetch'] });
    const [record] = readTokens({ list: entry });
    expect((await createTokenVerifier([record as TokenRecord], nodeSha256)(t1))?.id).toBe('ci');
  });
});

describe('authSettings: what serve enforces', () => {
  const tokens: TokenRecord[] = [{ id: 'a', sha256: A, scopes: ['read'] }];
  const base = { insecureNoAuth: false, openSmartProxy: false };

  it('loopback without tokens: open native API (the default, as before)', () => {
    expect(authSettings({ ...base, host: '127.0.0.1', tokens: [] }).requireToken).toBe(false);
  });

  it('configured tokens are required, on loopback too', () => {
    expect(authSettings({ ...base, host: '127.0.0.1', tokens }).requireToken).toBe(true);
    expect(authSettings({ ...base, host: '0.0.0.0', tokens }).requireToken).toBe(true);
  });

  it('refuses a non-loopback address without tokens, naming the options, unless --insecure-no-auth', () => {
    for (const host of ['0.0.0.0', '::', '10.0.0.5', 'tftp.example'])
      expect(issuesOf(() => authSettings({ ...base, host, tokens: [] }))).toEqual([
        expect.stringMatching(new RegExp(`^--host ${host}: .*--tokens-file.*--tokens.*--insecure-no-auth`)),
      ]);
    expect(authSettings({ ...base, host: '0.0.0.0', tokens: [], insecureNoAuth: true }).requireToken).toBe(false);
  });

  it('refuses --insecure-no-auth together with tokens', () => {
    expect(issuesOf(() => authSettings({ ...base, host: '0.0.0.0', tokens, insecureNoAuth: true }))).toEqual([
      expect.stringMatching(/^--insecure-no-auth: contradicts/),
    ]);
  });

  it('requires tokens that appear later (a --tokens-file that gains tokens), and keeps requiring them once gone', () => {
    const open = authSettings({ ...base, host: '127.0.0.1', tokens: [] });
    expect(tokensRequired(open)).toBe(false);
    open.tokens.replace(tokens);
    expect(tokensRequired(open)).toBe(true);
    // A server that started with tokens fails closed when its file loses them all.
    const closed = authSettings({ ...base, host: '127.0.0.1', tokens });
    closed.tokens.replace([]);
    expect(tokensRequired(closed)).toBe(true);
    expect(tokensRequired(noAuth())).toBe(false);
  });

  it('tells loopback addresses (as binds and as peers) from the rest', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST'])
      expect(isLoopback(a), a).toBe(true);
    for (const a of ['0.0.0.0', '::', '10.0.0.1', '::ffff:10.0.0.1', '128.0.0.1', '127.0.0.1.example', 'fe80::1'])
      expect(isLoopback(a), a).toBe(false);
  });
});

describe('trusted hosts: the client-certificate CN allow-list (smart-proxy trusted_hosts)', () => {
  it('parses --trusted-hosts into lowercase names, dropping blanks and duplicates', () => {
    expect(parseTrustedHosts(' Foreman.Example.com, ,foreman.example.com,proxy-2.example.com ')).toEqual([
      'foreman.example.com',
      'proxy-2.example.com',
    ]);
    expect(parseTrustedHosts('')).toEqual([]);
    expect(issuesOf(() => parseTrustedHosts('*.example.com,two words'))).toEqual([
      expect.stringMatching(/^--trusted-hosts: "\*\.example\.com", "two words": expected certificate CNs/),
    ]);
  });

  it('matches the CN case-insensitively and nothing else', () => {
    const auth = authSettings({
      host: '127.0.0.1',
      tokens: [],
      insecureNoAuth: false,
      openSmartProxy: false,
      trustedHosts: parseTrustedHosts('FOREMAN.example.com'),
    });
    expect(isTrustedClient(auth, 'foreman.example.com')).toBe(true);
    expect(isTrustedClient(auth, 'Foreman.Example.COM')).toBe(true);
    expect(isTrustedClient(auth, 'foreman.example.com.evil')).toBe(false);
    expect(isTrustedClient(auth, 'example.com')).toBe(false);
    expect(isTrustedClient(auth, null)).toBe(false);
    // No trusted hosts: no certificate is trusted.
    expect(isTrustedClient(noAuth(), 'foreman.example.com')).toBe(false);
  });
});
