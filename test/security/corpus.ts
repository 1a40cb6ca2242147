/**
 * The hostile-input corpus (security issue, part 4) as data: requests over every route, each with the status it must
 * get and a pattern its message must match (naming the offending field, as DESIGN.md "Names" and smart-proxy's
 * messages require). Generated systematically: every payload family is crossed with every route that takes it.
 * corpus.test.ts runs each entry against the in-process app and a real `serve --tftp-root` process.
 *
 * Conventions: hostile names and paths carry the marker `pxsec`, so that anything they might have created outside
 * the store and the TFTP root can be searched for (the others aim at files that exist, such as /etc/passwd, whose
 * fingerprint the test compares); every password in a URL contains `Hunter2x`. Long for a file, on purpose: it is
 * the data, each family next to the routes it is crossed with.
 */

export type Category =
  | 'traversal'
  | 'absolute'
  | 'nul-control'
  | 'backslash'
  | 'overlong'
  | 'lookalike'
  | 'reserved'
  | 'scheme'
  | 'credentials'
  | 'metadata'
  | 'mac'
  | 'variant'
  | 'oversized'
  | 'content-type'
  | 'native-api'
  | 'site'
  | 'method';

export interface Expectation {
  /** An exact status, or the class. */
  readonly status: number | '2xx' | '4xx';
  /**
   * Matched against the message: `error.message` of a JSON error, else the body, else `<status> <reason>` when the
   * body is empty (Node's parser refusing a request).
   */
  readonly message: RegExp;
}

/** A large body described rather than stored: `head + repeat x n + tail`, `bytes` long in all. */
export interface BigBody {
  readonly head: string;
  readonly repeat: string;
  readonly tail: string;
  readonly bytes: number;
}
export type BodySpec = string | BigBody;

/** What a benign-but-odd, accepted entry creates. */
export type Creation =
  | { readonly kind: 'boot-file'; readonly name: string; readonly basename: string; readonly upstreamPath: string }
  | { readonly kind: 'config'; readonly path: string }
  | { readonly kind: 'nothing' };

export interface CorpusEntry {
  /** Unique: `<category>/<route>/<payload>`. */
  readonly id: string;
  readonly category: Category;
  readonly method: string;
  /** The request target byte for byte (percent-encoding kept; raw bytes are sent raw over the socket). */
  readonly target: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: BodySpec;
  /** Socket only: send the body chunked, without a Content-Length. */
  readonly chunked?: boolean;
  readonly expect: Expectation;
  /**
   * Where the real server answers differently: Node's HTTP parser refuses raw bytes and over-long request lines that
   * `app.request()` never sees (its Request constructor percent-encodes them).
   */
  readonly overSocket?: Expectation;
  /** Must appear in no answer, stored object, TFTP-root file or log line. */
  readonly secret?: string;
  /** Accepted on purpose (listed here, with why); everything else must be refused. */
  readonly accepted?: { readonly why: string; readonly creates: Creation };
  /** Refused only once another engineer's change lands; the run shows these as their own group. */
  readonly pending?: string;
}

export interface CorpusContext {
  /** Origin of the test's upstream mirror (`http://127.0.0.1:<port>`). */
  readonly upstream: string;
}

export const SECRET = 'Hunter2x';
export const MIB = 1024 * 1024;
/** The one site besides `default` the servers under test are started with (`--sites east`). */
export const SITE = 'east';
/** A well-formed MAC: with it, the route's other inputs are what gets refused. */
const MAC = 'aa:bb:cc:dd:ee:ff';

const FORM = { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' } as const;
const JSON_TYPE = { accept: 'application/json', 'content-type': 'application/json' } as const;
const ACCEPT = { accept: 'application/json' } as const;
/** Node's parser refuses raw spaces, control bytes and backslashes in a request target with an empty 400. */
const NODE_400: Expectation = { status: 400, message: /^400 Bad Request$/ };
const form = (params: Record<string, string>) => new URLSearchParams(params).toString();

/** Expected answer to a refused boot-file request: 400 naming `field`, with what the rule says. */
const refused = (field: string, why: RegExp): Expectation => ({
  status: 400,
  message: new RegExp(`^${field}: .*${why.source}`),
});

const CHARS = /characters outside/;
const DOTDOT = /"\.\." path component/;
const STARTS = /must not start with "\." or "-"/;

// ---------------------------------------------------------------------------------------------------------------
// Names: payloads for `prefix` (with a good URL) and for the URL's last segment (with a good prefix).

interface NamePayload {
  readonly category: Category;
  readonly id: string;
  readonly value: string;
  readonly why: RegExp;
}

const longComponent = 'a'.repeat(256);
const PREFIX_PAYLOADS: readonly NamePayload[] = [
  { category: 'traversal', id: 'dotdot-etc-passwd', value: '../../../../../../../../etc/passwd', why: DOTDOT },
  { category: 'traversal', id: 'dotdot-inside', value: 'boot/../../../../../pxsec-escape', why: DOTDOT },
  { category: 'traversal', id: 'dotdot-trailing', value: 'boot/pxsec/../', why: DOTDOT },
  { category: 'traversal', id: 'dot', value: './pxsec', why: /"\." path component/ },
  { category: 'traversal', id: 'enc-slash', value: '..%2f..%2f..%2fpxsec', why: CHARS },
  { category: 'traversal', id: 'enc-dots', value: '%2e%2e/%2e%2e/pxsec', why: CHARS },
  { category: 'traversal', id: 'double-enc', value: '%252e%252e%252fpxsec', why: CHARS },
  { category: 'traversal', id: 'enc-backslash', value: '..%5c..%5cpxsec', why: CHARS },
  { category: 'traversal', id: 'overlong-utf8', value: '%c0%ae%c0%ae/%c0%ae%c0%ae/pxsec', why: CHARS },
  { category: 'traversal', id: 'dots4', value: '....//....//pxsec', why: STARTS },
  { category: 'traversal', id: 'semicolon', value: '..;/pxsec', why: CHARS },
  { category: 'traversal', id: 'half-enc', value: '.%2e/pxsec', why: CHARS },
  { category: 'traversal', id: 'two-dot-leader', value: '\u2025/pxsec', why: CHARS },
  { category: 'traversal', id: 'fullwidth-dots', value: '\uff0e\uff0e/pxsec', why: CHARS },
  { category: 'absolute', id: 'etc-passwd', value: '/etc/passwd', why: /must be relative/ },
  { category: 'absolute', id: 'tmp', value: '/tmp/pxsec-abs', why: /must be relative/ },
  { category: 'absolute', id: 'double-slash', value: '//pxsec/x', why: /must be relative/ },
  { category: 'absolute', id: 'empty-component', value: 'boot//pxsec', why: /empty path component/ },
  { category: 'absolute', id: 'windows-drive', value: 'C:\\pxsec', why: CHARS },
  { category: 'absolute', id: 'unc', value: '\\\\server\\share\\pxsec', why: CHARS },
  { category: 'absolute', id: 'file-url', value: 'file:///etc/pxsec', why: CHARS },
  { category: 'absolute', id: 'tilde', value: '~root/pxsec', why: CHARS },
  { category: 'nul-control', id: 'nul', value: 'boot/pxsec\u0000', why: CHARS },
  { category: 'nul-control', id: 'nul-traversal', value: 'boot\u0000/../../pxsec', why: CHARS },
  { category: 'nul-control', id: 'enc-nul', value: 'boot/pxsec%00', why: CHARS },
  { category: 'nul-control', id: 'newline', value: 'boot/pxsec\n', why: CHARS },
  { category: 'nul-control', id: 'crlf-header', value: 'boot/pxsec\r\nX-Injected: 1', why: CHARS },
  { category: 'nul-control', id: 'del', value: 'boot/pxsec\u007f', why: CHARS },
  { category: 'backslash', id: 'backslash-traversal', value: '..\\..\\..\\pxsec', why: CHARS },
  { category: 'backslash', id: 'backslash-sep', value: 'boot\\pxsec', why: CHARS },
  { category: 'overlong', id: 'component-256', value: `boot/${longComponent}`, why: /longer than 255 bytes/ },
  {
    category: 'overlong',
    id: 'name-1025',
    value: `${'a'.repeat(200)}/`.repeat(6) + 'pxsec',
    why: /longer than 1024 bytes/,
  },
  { category: 'overlong', id: 'deep', value: 'a/'.repeat(600) + 'pxsec', why: /longer than 1024 bytes/ },
  { category: 'overlong', id: 'prefix-100k', value: 'p'.repeat(100 * 1024), why: /longer than 1024 bytes/ },
  { category: 'lookalike', id: 'cyrillic-o', value: 'b\u043e\u043et/pxsec', why: CHARS },
  { category: 'lookalike', id: 'fullwidth', value: '\uff42\uff4f\uff4f\uff54/pxsec', why: CHARS },
  { category: 'lookalike', id: 'rtl-override', value: 'boot/pxsec\u202egpj', why: CHARS },
  { category: 'lookalike', id: 'zero-width-space', value: 'boot/\u200bpxsec', why: CHARS },
  { category: 'lookalike', id: 'bom', value: 'boot/pxsec\ufeff', why: CHARS },
  { category: 'lookalike', id: 'fullwidth-solidus', value: 'boot\uff0f..\uff0fpxsec', why: CHARS },
  { category: 'lookalike', id: 'division-slash', value: 'boot\u2215pxsec', why: CHARS },
  { category: 'lookalike', id: 'combining', value: 'boot/pxse\u0301c', why: CHARS },
  { category: 'lookalike', id: 'nbsp', value: 'boot/pxsec\u00a0', why: CHARS },
  { category: 'reserved', id: 'versions-dir', value: 'boot/pxsec-orig/', why: /ends with "-orig"/ },
  { category: 'reserved', id: 'pxelinux-cfg', value: 'pxelinux.cfg/', why: /falls inside "pxelinux.cfg"/ },
  { category: 'reserved', id: 'grub2', value: 'grub2/', why: /falls inside "grub2"/ },
  { category: 'reserved', id: 'ztp', value: 'ztp.cfg/', why: /falls inside "ztp.cfg"/ },
  { category: 'reserved', id: 'dash', value: '-rf', why: STARTS },
  { category: 'reserved', id: 'agent-tmp', value: '.pxecache-tmp-pxsec/', why: STARTS },
];

/** Last URL segments (after `<upstream>/media/`), with prefix `sec/p`. */
const PATH_PAYLOADS: readonly NamePayload[] = [
  { category: 'traversal', id: 'dotdot', value: '..', why: DOTDOT },
  { category: 'traversal', id: 'enc-dotdot', value: '%2e%2e', why: DOTDOT },
  { category: 'traversal', id: 'half-enc', value: '.%2E', why: DOTDOT },
  { category: 'traversal', id: 'dot', value: '.', why: /"\." path component/ },
  { category: 'traversal', id: 'enc-slash', value: '..%2f..%2f..%2fetc%2fpasswd', why: CHARS },
  { category: 'traversal', id: 'enc-dots-slash', value: '%2e%2e%2f%2e%2e%2fpxsec', why: CHARS },
  { category: 'traversal', id: 'double-enc', value: '%252e%252e%252fpxsec', why: CHARS },
  { category: 'traversal', id: 'enc-backslash', value: '..%5c..%5cpxsec', why: CHARS },
  { category: 'traversal', id: 'overlong-utf8', value: '%c0%ae%c0%ae%c0%afpxsec', why: /invalid percent-encoding/ },
  { category: 'traversal', id: 'dots4', value: '....%2f%2fpxsec', why: CHARS },
  { category: 'absolute', id: 'no-file-name', value: 'pxsec/', why: /does not end with a file name/ },
  { category: 'absolute', id: 'enc-absolute', value: '%2fetc%2fpxsec', why: CHARS },
  { category: 'nul-control', id: 'enc-nul', value: 'pxsec%00', why: CHARS },
  { category: 'nul-control', id: 'enc-nul-ext', value: 'pxsec%00.cfg', why: CHARS },
  { category: 'nul-control', id: 'crlf', value: 'pxsec%0d%0aX-Injected:%201', why: CHARS },
  { category: 'nul-control', id: 'bad-percent', value: 'pxsec%zz', why: /invalid percent-encoding/ },
  { category: 'nul-control', id: 'truncated-utf8', value: 'pxsec%E0%A4%A', why: /invalid percent-encoding/ },
  { category: 'backslash', id: 'raw-backslash', value: '..\\..\\pxsec', why: CHARS },
  { category: 'backslash', id: 'backslash-only', value: 'pxsec\\vmlinuz', why: CHARS },
  { category: 'overlong', id: 'basename-256', value: longComponent, why: /longer than 255 bytes/ },
  { category: 'overlong', id: 'url-9000', value: 'a'.repeat(9000), why: /longer than 8192 characters/ },
  { category: 'lookalike', id: 'rtl-override', value: 'pxsec%E2%80%AEgpj.exe', why: CHARS },
  { category: 'lookalike', id: 'cyrillic-ze', value: 'vmlinu%D0%B7', why: CHARS },
  { category: 'lookalike', id: 'fullwidth-v', value: '%EF%BD%96mlinuz', why: CHARS },
  { category: 'lookalike', id: 'zero-width', value: 'vmlinuz%E2%80%8B', why: CHARS },
  { category: 'lookalike', id: 'fullwidth-dots', value: '%EF%BC%8E%EF%BC%8E', why: CHARS },
  { category: 'reserved', id: 'versions-dir', value: 'vmlinuz-orig', why: /ends with "-orig"/ },
  { category: 'reserved', id: 'leading-dash', value: '-vmlinuz', why: STARTS },
  { category: 'reserved', id: 'leading-dot', value: '.pxecache-tmp-pxsec', why: STARTS },
];

type NameRoute = 'form' | 'json' | 'query' | 'site-form' | 'api';

function nameRequest(route: NameRoute, params: Record<string, string>) {
  switch (route) {
    case 'form':
      return { method: 'POST', target: '/tftp/fetch_boot_file', headers: FORM, body: form(params) };
    case 'json':
      return { method: 'POST', target: '/tftp/fetch_boot_file', headers: JSON_TYPE, body: JSON.stringify(params) };
    case 'query':
      return { method: 'POST', target: `/tftp/fetch_boot_file?${form(params)}`, headers: ACCEPT };
    case 'site-form':
      return { method: 'POST', target: `/sites/${SITE}/tftp/fetch_boot_file`, headers: FORM, body: form(params) };
    case 'api':
      return { method: 'POST', target: '/api/v1/fetch', headers: JSON_TYPE, body: JSON.stringify(params) };
  }
}

/** Node's default limit on a request's header section (request line included) is 16 KiB. */
const MAX_HEAD_BYTES = 16 * 1024;
const TOO_LARGE_HEAD: Expectation = { status: 431, message: /^431 Request Header Fields Too Large$/ };

function nameEntries(ctx: CorpusContext): CorpusEntry[] {
  const out: CorpusEntry[] = [];
  const routes: readonly NameRoute[] = ['form', 'json', 'query', 'site-form', 'api'];
  for (const p of PREFIX_PAYLOADS)
    for (const route of routes) {
      const req = nameRequest(route, { prefix: p.value, path: `${ctx.upstream}/media/p/vmlinuz` });
      out.push({
        id: `${p.category}/prefix-${route}/${p.id}`,
        category: p.category,
        ...req,
        expect: refused('prefix', p.why),
        ...(req.target.length > MAX_HEAD_BYTES ? { overSocket: TOO_LARGE_HEAD } : {}),
      });
    }
  for (const p of PATH_PAYLOADS)
    for (const route of ['form', 'json', 'api'] as const) {
      const req = nameRequest(route, { prefix: 'sec/p', path: `${ctx.upstream}/media/${p.value}` });
      out.push({
        id: `${p.category}/path-${route}/${p.id}`,
        category: p.category,
        ...req,
        expect: refused('path', p.why),
      });
    }
  // Not URLs at all: local paths where a URL belongs.
  const notUrls: [Category, string, string][] = [
    ['absolute', 'etc-passwd', '/etc/passwd'],
    ['absolute', 'double-slash', '//pxsec/vmlinuz'],
    ['backslash', 'unc', '\\\\server\\share\\pxsec'],
    ['traversal', 'relative', '../../../etc/passwd'],
    ['nul-control', 'nul-url', `${ctx.upstream}/\u0000/pxsec`.replace('http', 'ht\u0000tp')],
  ];
  for (const [category, id, path] of notUrls)
    for (const route of ['form', 'api'] as const)
      out.push({
        id: `${category}/url-${route}/${id}`,
        category,
        ...nameRequest(route, { prefix: 'sec/p', path }),
        expect: refused('path', /is not a valid absolute URL/),
      });
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// URLs: every scheme smart-proxy would not download, credentials, metadata addresses.

const SCHEMES: readonly [string, string][] = [
  ['file', 'file:///etc/passwd'],
  ['file', 'file://localhost/etc/pxsec'],
  ['file', 'FILE:///etc/pxsec'],
  ['file', 'file:/etc/pxsec'],
  ['gopher', 'gopher://127.0.0.1:70/_pxsec'],
  ['dict', 'dict://127.0.0.1:2628/d:pxsec'],
  ['ldap', 'ldap://127.0.0.1/dc=pxsec'],
  ['ldaps', 'ldaps://127.0.0.1/dc=pxsec'],
  ['jar', 'jar:http://127.0.0.1/pxsec.jar!/vmlinuz'],
  ['data', 'data:application/octet-stream;base64,cHhzZWM='],
  ['javascript', 'javascript:alert(1)//vmlinuz'],
  ['tftp', 'tftp://127.0.0.1/pxsec/vmlinuz'],
  ['smb', 'smb://127.0.0.1/share/pxsec'],
  ['ws', 'ws://127.0.0.1/pxsec/vmlinuz'],
  ['wss', 'wss://127.0.0.1/pxsec/vmlinuz'],
  ['sftp', 'sftp://127.0.0.1/pxsec/vmlinuz'],
  ['scp', 'scp://127.0.0.1/pxsec/vmlinuz'],
  ['ssh', 'ssh://127.0.0.1/pxsec'],
  ['telnet', 'telnet://127.0.0.1/pxsec'],
  ['ftps', 'ftps://127.0.0.1/pxsec/vmlinuz'],
  ['mailto', 'mailto:root@localhost?subject=pxsec'],
  ['netdoc', 'netdoc:///etc/pxsec'],
  ['php', 'php://filter/resource=/etc/pxsec'],
  ['expect', 'expect://id;pxsec'],
  ['blob', 'blob:http://127.0.0.1/0-pxsec'],
  ['about', 'about:pxsec'],
  ['view-source', 'view-source:http://127.0.0.1/pxsec/vmlinuz'],
  ['s3', 's3://bucket/pxsec/vmlinuz'],
  ['git', 'git://127.0.0.1/pxsec.git'],
  ['rsync', 'rsync://127.0.0.1/pxsec/vmlinuz'],
  ['irc', 'irc://127.0.0.1/pxsec'],
  ['rtsp', 'rtsp://127.0.0.1/pxsec'],
  ['nntp', 'nntp://127.0.0.1/pxsec'],
  ['chrome', 'chrome://settings/pxsec'],
  ['iscsi', 'iscsi://127.0.0.1/iqn.pxsec/0'],
  ['unix', 'unix:/var/run/docker.sock:/pxsec'],
];

function schemeEntries(): CorpusEntry[] {
  const out: CorpusEntry[] = [];
  SCHEMES.forEach(([scheme, url], i) => {
    const why = new RegExp(`scheme "${scheme.toLowerCase()}" is not supported`);
    out.push({
      id: `scheme/form/${i}-${scheme}`,
      category: 'scheme',
      ...nameRequest('form', { prefix: 'sec/s', path: url }),
      expect: refused('path', why),
    });
    out.push({
      id: `scheme/api-name-url/${i}-${scheme}`,
      category: 'scheme',
      ...nameRequest('api', { name: 'sec/s-vmlinuz', url }),
      expect: refused('url', why),
    });
    if (i % 4 === 0)
      out.push({
        id: `scheme/site-form/${i}-${scheme}`,
        category: 'scheme',
        ...nameRequest('site-form', { prefix: 'sec/s', path: url }),
        expect: refused('path', why),
      });
  });
  return out;
}

function credentialEntries(ctx: CorpusContext): CorpusEntry[] {
  const host = new URL(ctx.upstream).host;
  const withCreds = (path: string, password = `${SECRET}-pw`) => `http://pxsec-user:${password}@${host}${path}`;
  const accepted = (id: string, route: NameRoute, params: Record<string, string>, creates: Creation, why: string) => ({
    id: `credentials/${route}/${id}`,
    category: 'credentials' as const,
    ...nameRequest(route, params),
    expect: { status: route === 'api' ? 202 : 200, message: route === 'api' ? /\*\*\*@/ : /^$/ },
    secret: SECRET,
    accepted: { why, creates },
  });
  const refusedWith = (id: string, route: NameRoute, path: string, field: string, why: RegExp, pending?: string) => ({
    id: `credentials/${route}/${id}`,
    category: 'credentials' as const,
    ...nameRequest(route, route === 'api' ? { name: 'sec/c-vmlinuz', url: path } : { prefix: 'sec/c', path }),
    expect: refused(field, why),
    secret: SECRET,
    ...(pending ? { pending } : {}),
  });
  const sentAsBasic = 'credentials in a media URL are sent as Basic auth (curl does) and recorded as ***';
  return [
    accepted(
      'basic-auth',
      'form',
      { prefix: 'sec/cred', path: withCreds('/media/cred/vmlinuz') },
      { kind: 'boot-file', name: 'sec/cred-vmlinuz', basename: 'vmlinuz', upstreamPath: '/media/cred/vmlinuz' },
      sentAsBasic,
    ),
    accepted(
      'percent-encoded-password',
      'json',
      { prefix: 'sec/cred2', path: withCreds('/media/cred2/initrd.img', `${SECRET}%40%3Apw`) },
      {
        kind: 'boot-file',
        name: 'sec/cred2-initrd.img',
        basename: 'initrd.img',
        upstreamPath: '/media/cred2/initrd.img',
      },
      sentAsBasic,
    ),
    accepted(
      'api-name-url',
      'api',
      { name: 'sec/cred3-vmlinuz', url: withCreds('/media/cred3/vmlinuz') },
      // {name, url}: the file under the versions directory is named after the name, not the URL.
      { kind: 'boot-file', name: 'sec/cred3-vmlinuz', basename: 'cred3-vmlinuz', upstreamPath: '/media/cred3/vmlinuz' },
      sentAsBasic,
    ),
    refusedWith('no-file-name', 'form', withCreds('/media/pxsec/'), 'path', /does not end with a file name/),
    refusedWith('backslashes', 'form', withCreds('\\media\\pxsec\\vmlinuz').replace('//', '\\\\'), 'path', CHARS),
    refusedWith('dotdot', 'form', withCreds('/media/..'), 'path', DOTDOT),
    refusedWith('bad-percent', 'form', withCreds('/media/pxsec%zz'), 'path', /invalid percent-encoding/),
    refusedWith('scheme', 'form', `gopher://u:${SECRET}@${host}/pxsec`, 'path', /scheme "gopher" is not supported/),
    refusedWith('scheme-api', 'api', `smb://u:${SECRET}@${host}/pxsec`, 'url', /scheme "smb" is not supported/),
    refusedWith('bad-host', 'form', `http://u:${SECRET}@[pxsec/x`, 'path', /not a valid absolute URL/),
    refusedWith('bad-port', 'api', `http://u:${SECRET}@${host}99999/x`, 'url', /not a valid/),
  ];
}

/**
 * 169.254.169.254 (AWS, GCP, Azure, OpenStack metadata) in the spellings URL parsers accept, and its neighbours. The
 * refusal is the upstream policy's (DEFAULT_DENY in src/core/host-rules.ts): a 400 naming the field and the rule.
 */
const METADATA: readonly [string, string][] = [
  ['dotted', 'http://169.254.169.254/latest/meta-data/ami-id'],
  ['decimal', 'http://2852039166/latest/meta-data/ami-id'],
  ['hex', 'http://0xa9fea9fe/latest/meta-data/ami-id'],
  ['hex-dotted', 'http://0xa9.0xfe.0xa9.0xfe/latest/meta-data/ami-id'],
  ['octal', 'http://0251.0376.0251.0376/latest/meta-data/ami-id'],
  ['octal-whole', 'http://025177524776/latest/meta-data/ami-id'],
  ['short-form', 'http://169.254.43518/latest/meta-data/ami-id'],
  ['mixed', 'http://169.254.0xa9fe/latest/meta-data/ami-id'],
  ['ipv4-mapped', 'http://[::ffff:169.254.169.254]/latest/meta-data/ami-id'],
  ['ipv4-mapped-hex', 'http://[::ffff:a9fe:a9fe]/latest/meta-data/ami-id'],
  ['ipv4-mapped-long', 'http://[0:0:0:0:0:ffff:a9fe:a9fe]/latest/meta-data/ami-id'],
  ['with-port', 'http://169.254.169.254:80/latest/meta-data/ami-id'],
  ['https', 'https://169.254.169.254/latest/meta-data/ami-id'],
  ['credentials', 'http://a:b@169.254.169.254/latest/meta-data/ami-id'],
  ['ecs-task', 'http://169.254.170.2/v2/metadata'],
  ['aws-ipv6', 'http://[fd00:ec2::254]/latest/meta-data/ami-id'],
  // "This host" and IPv6 link-local: connecting to them reaches the server itself or its link.
  ['this-host', 'http://0.0.0.0/pxsec/vmlinuz'],
  ['this-host-short', 'http://0/pxsec/vmlinuz'],
  ['unspecified-v6', 'http://[::]/pxsec/vmlinuz'],
  ['link-local-v6', 'http://[fe80::a9fe:a9fe]/pxsec/vmlinuz'],
];

function metadataEntries(): CorpusEntry[] {
  return METADATA.flatMap(([id, url]) => [
    {
      id: `metadata/form/${id}`,
      category: 'metadata' as const,
      ...nameRequest('form', { prefix: `sec/meta-${id}`, path: url }),
      expect: { status: 400, message: /^path: address .* is refused by the default rule / },
    },
    {
      id: `metadata/api-name-url/${id}`,
      category: 'metadata' as const,
      ...nameRequest('api', { name: `sec/meta-api-${id}`, url }),
      expect: { status: 400, message: /^url: address .* is refused by the default rule / },
    },
  ]);
}

// ---------------------------------------------------------------------------------------------------------------
// pxeconfig routes: smart-proxy answers 403 for a bad MAC (checked first) and for an unknown variant.

/** [id, MAC as written in the URL, expectation]. Dot segments are resolved by the URL parser: a 404, no route. */
const BAD_MACS: readonly [string, string][] = [
  ['short', 'aa:bb:cc:dd:ee'],
  ['dashes', 'aa-bb-cc-dd-ee-ff'],
  ['bare', 'aabbccddeeff'],
  ['seven-octets', 'aa:bb:cc:dd:ee:ff:00'],
  ['three-digits', 'aaa:bb:cc:dd:ee:ff'],
  ['non-hex', 'gg:bb:cc:dd:ee:ff'],
  ['enc-traversal', '..%2f..%2f..%2fetc%2fpasswd'],
  ['enc-nul', 'aa:bb:cc:dd:ee:ff%00'],
  ['enc-newline', 'aa:bb:cc:dd:ee:ff%0a'],
  ['enc-backslash', 'aa:bb:cc:dd:ee:ff%5c..%5cpxsec'],
  ['fullwidth-colon', 'aa%EF%BC%9Abb%EF%BC%9Acc%EF%BC%9Add%EF%BC%9Aee%EF%BC%9Aff'],
  ['cyrillic-a', '%D0%B0a:bb:cc:dd:ee:ff'],
  ['pxelinux-name', '01-aa-bb-cc-dd-ee-ff'],
  ['trailing-space', 'aa:bb:cc:dd:ee:ff%20'],
  ['overlong', 'aa:'.repeat(400) + 'ff'],
];

function macEntries(): CorpusEntry[] {
  const out: CorpusEntry[] = [];
  const routes: [string, string, (mac: string) => string, boolean][] = [
    ['post', 'POST', (m) => `/tftp/PXELinux/${m}`, true],
    ['get', 'GET', (m) => `/tftp/PXEGrub2/${m}`, false],
    ['delete', 'DELETE', (m) => `/tftp/PXEGrub/${m}`, false],
    ['legacy-post', 'POST', (m) => `/tftp/${m}`, true],
    ['legacy-delete', 'DELETE', (m) => `/tftp/${m}`, false],
    ['site-post', 'POST', (m) => `/sites/${SITE}/tftp/iPXE/${m}`, true],
  ];
  for (const [id, mac] of BAD_MACS)
    for (const [route, method, target, withBody] of routes)
      out.push({
        id: `mac/${route}/${id}`,
        category: 'mac',
        method,
        target: target(mac),
        headers: withBody ? FORM : ACCEPT,
        ...(withBody ? { body: form({ pxeconfig: 'DEFAULT pxsec' }) } : {}),
        expect: { status: 403, message: /^Invalid MAC address: / },
      });
  // Legacy `/tftp/:mac` swallows any single segment, route names included: still a MAC check.
  for (const word of ['serverName', 'fetch_boot_file'])
    out.push({
      id: `mac/legacy-delete/${word}`,
      category: 'mac',
      method: 'DELETE',
      target: `/tftp/${word}`,
      headers: ACCEPT,
      expect: { status: 403, message: new RegExp(`^Invalid MAC address: ${word}$`) },
    });
  return out;
}

const BAD_VARIANTS: readonly [string, string][] = [
  ['unknown', 'Server'],
  ['config-dir', 'pxelinux.cfg'],
  ['enc-traversal', '..%2fpxsec'],
  ['enc-nul', 'PXELinux%00'],
  ['fullwidth', '%EF%BC%B0XELinux'],
  ['cyrillic-er', '%D0%A0XELinux'],
  ['zero-width', 'PXELinux%E2%80%8B'],
  ['turkish-dotted-i', 'PXEL%C4%B0NUX'],
  ['overlong', 'P'.repeat(300)],
  ['enc-slash', 'Pxelinux%2fpxsec'],
];

function variantEntries(): CorpusEntry[] {
  const out: CorpusEntry[] = [];
  const expect: Expectation = { status: 403, message: /^Unrecognized pxeboot config type: / };
  for (const [id, v] of BAD_VARIANTS) {
    out.push(
      { id: `variant/post/${id}`, category: 'variant', method: 'POST', target: `/tftp/${v}/${MAC}`, headers: FORM, body: form({ pxeconfig: 'x' }), expect }, // prettier-ignore
      { id: `variant/get/${id}`, category: 'variant', method: 'GET', target: `/tftp/${v}/${MAC}`, headers: ACCEPT, expect }, // prettier-ignore
      { id: `variant/delete/${id}`, category: 'variant', method: 'DELETE', target: `/tftp/${v}/${MAC}`, headers: ACCEPT, expect }, // prettier-ignore
      { id: `variant/create-default/${id}`, category: 'variant', method: 'POST', target: `/tftp/${v}/create_default`, headers: FORM, body: form({ menu: 'x' }), expect }, // prettier-ignore
    );
  }
  // Ruby's String#capitalize, which smart-proxy matches variants with, maps these to real variants too.
  const odd: [string, string, string][] = [
    ['dotless-i', '%C4%B1pxe', 'pxelinux.cfg/01-aa-bb-cc-dd-ee-01.ipxe'],
    ['long-s', '%C5%BFyslinux', 'pxelinux.cfg/01-aa-bb-cc-dd-ee-02'],
  ];
  odd.forEach(([id, v, path], i) =>
    out.push({
      id: `variant/post/${id}`,
      category: 'variant',
      method: 'POST',
      target: `/tftp/${v}/aa:bb:cc:dd:ee:0${i + 1}`,
      headers: FORM,
      body: form({ pxeconfig: 'DEFAULT local' }),
      expect: { status: 200, message: /^$/ },
      accepted: {
        why: 'upper-cases to a real variant, as Ruby capitalize does in smart-proxy; the file name is fixed',
        creates: { kind: 'config', path },
      },
    }),
  );
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Bodies: oversized, and of the wrong type.

const big = (head: string, tail = '', bytes = 20 * MIB): BigBody => ({ head, repeat: 'a', tail, bytes });
const TOO_LARGE = /request body is larger than 1048576 bytes/;

function oversizedEntries(): CorpusEntry[] {
  const e = (id: string, method: string, target: string, headers: Record<string, string>, body: BigBody) => ({
    id: `oversized/${id}`,
    category: 'oversized' as const,
    method,
    target,
    headers,
    body,
    expect: { status: 413, message: TOO_LARGE },
  });
  return [
    e('fetch-form-20MiB', 'POST', '/tftp/fetch_boot_file', FORM, big('path=http://x/y&prefix=')),
    e('fetch-json-20MiB', 'POST', '/tftp/fetch_boot_file', JSON_TYPE, big('{"prefix":"', '"}')),
    e('fetch-1MiB+1', 'POST', '/tftp/fetch_boot_file', FORM, big('prefix=', '', MIB + 1)),
    { ...e('fetch-chunked-2MiB', 'POST', '/tftp/fetch_boot_file', FORM, big('prefix=', '', 2 * MIB)), chunked: true },
    e('site-fetch-20MiB', 'POST', `/sites/${SITE}/tftp/fetch_boot_file`, FORM, big('prefix=')),
    e('pxeconfig-20MiB', 'POST', `/tftp/PXELinux/${MAC}`, FORM, big('pxeconfig=')),
    e('legacy-pxeconfig-20MiB', 'POST', `/tftp/${MAC}`, FORM, big('syslinux_config=')),
    e('create-default-20MiB', 'POST', '/tftp/PXEGrub2/create_default', FORM, big('menu=')),
    e('delete-20MiB', 'DELETE', `/tftp/PXELinux/${MAC}`, FORM, big('x=')),
    e('api-fetch-20MiB', 'POST', '/api/v1/fetch', JSON_TYPE, big('{"name":"', '"}')),
    e('api-fetch-multipart-20MiB', 'POST', '/api/v1/fetch', { 'content-type': 'multipart/form-data; boundary=b' },
      big('--b\r\ncontent-disposition: form-data; name="name"\r\n\r\n', '\r\n--b--\r\n')), // prettier-ignore
    {
      ...e('declared-100GB', 'POST', '/tftp/fetch_boot_file', { ...FORM, 'content-length': '100000000000' }, big('')),
      body: 'prefix=x',
    },
  ];
}

function contentTypeEntries(): CorpusEntry[] {
  const e = (
    id: string,
    target: string,
    headers: Record<string, string>,
    body: string,
    expect: Expectation,
  ): CorpusEntry => ({
    id: `content-type/${id}`,
    category: 'content-type',
    method: 'POST',
    target,
    headers,
    body,
    expect,
  });
  const fb = '/tftp/fetch_boot_file';
  const xml = { accept: 'application/json', 'content-type': 'text/xml' };
  const multipart = { accept: 'application/json', 'content-type': 'multipart/form-data; boundary=b' };
  const good = form({ prefix: 'sec/ct', path: 'http://127.0.0.1/pxsec/vmlinuz' });
  const required = (field: string): Expectation => ({ status: 400, message: new RegExp(`^${field}: is required`) });
  const badJson: Expectation = { status: 400, message: /^body: is not valid JSON$/ };
  const notObject: Expectation = { status: 400, message: /^body: must be a JSON object$/ };
  const mustString = (field: string): Expectation => ({ status: 400, message: new RegExp(`^${field}: must be a string$`) }); // prettier-ignore
  return [
    e('xml', fb, xml, '<fetch><prefix>sec/ct</prefix><path>http://127.0.0.1/pxsec/vmlinuz</path></fetch>', required('prefix')), // prettier-ignore
    e('text-plain-form', fb, { 'content-type': 'text/plain' }, good, required('prefix')),
    e('no-type-form', fb, {}, good, required('prefix')),
    e('form-type-json-body', fb, FORM, '{"prefix":"sec/ct","path":"http://127.0.0.1/pxsec/vmlinuz"}', required('prefix')), // prettier-ignore
    e('json-type-form-body', fb, JSON_TYPE, good, badJson),
    e('json-malformed', fb, JSON_TYPE, '{"prefix": "sec/ct", ', badJson),
    e('json-upper-type', fb, { 'content-type': 'APPLICATION/JSON' }, '{bad', badJson),
    e('json-deep', fb, JSON_TYPE, '['.repeat(500_000), badJson),
    e('json-array', fb, JSON_TYPE, '["sec/ct"]', notObject),
    e('json-null', fb, JSON_TYPE, 'null', notObject),
    e('json-string', fb, JSON_TYPE, '"prefix=sec/ct"', notObject),
    e('json-number-field', fb, JSON_TYPE, '{"prefix":1,"path":"http://127.0.0.1/pxsec/vmlinuz"}', mustString('prefix')),
    e('json-array-field', fb, JSON_TYPE, '{"prefix":["../pxsec"],"path":"http://x/y"}', mustString('prefix')),
    e('json-operator', fb, JSON_TYPE, '{"prefix":{"$ne":null},"path":"http://x/y"}', mustString('prefix')),
    e('json-proto', fb, JSON_TYPE, '{"__proto__":{"prefix":"sec/ct"},"path":"http://x/y"}', mustString('__proto__')),
    e('json-constructor', fb, JSON_TYPE, '{"constructor":{"prototype":{"prefix":"x"}}}', mustString('constructor')),
    e('multipart-no-boundary', fb, { 'content-type': 'multipart/form-data' }, '--x\r\n', {
      status: 400,
      message: /^body: is not valid multipart\/form-data$/,
    }),
    e('multipart-file-part', fb, multipart, '--b\r\ncontent-disposition: form-data; name="prefix"; filename="p"\r\n\r\nsec/ct\r\n--b--\r\n', required('prefix')), // prettier-ignore
    e('api-xml', '/api/v1/fetch', xml, '<name>sec/ct</name>', { status: 400, message: /^name: is required/ }),
    e('api-prefix-only', '/api/v1/fetch', JSON_TYPE, '{"prefix":"sec/ct"}', { status: 400, message: /^path: is required/ }), // prettier-ignore
    e('api-name-only', '/api/v1/fetch', JSON_TYPE, '{"name":"sec/ct"}', { status: 400, message: /^url: is required/ }), // prettier-ignore
    e('api-multipart-garbage', '/api/v1/fetch', { 'content-type': 'multipart/form-data' }, 'x', { status: 400, message: /^body: is not valid/ }), // prettier-ignore
    e('pxeconfig-xml', `/tftp/PXELinux/${MAC}`, xml, '<pxeconfig>x</pxeconfig>', { status: 400, message: /^TFTP: Failed to create pxe config file: Invalid parameters received$/ }), // prettier-ignore
    e('pxeconfig-multipart-garbage', `/tftp/PXELinux/${MAC}`, { 'content-type': 'multipart/form-data' }, 'x', { status: 400, message: /^body: is not valid/ }), // prettier-ignore
    e('pxeconfig-json-malformed', `/tftp/${MAC}`, JSON_TYPE, '{', badJson),
    e('create-default-xml', '/tftp/PXELinux/create_default', xml, '<menu/>', { status: 400, message: /^TFTP: Failed to create PXE default file: Default config not supplied$/ }), // prettier-ignore
    e('create-default-json-array', '/tftp/create_default', JSON_TYPE, '[]', notObject),
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// The native API's own inputs, per-site routes, methods.

function nativeApiEntries(): CorpusEntry[] {
  const out: CorpusEntry[] = [];
  const get = (id: string, target: string, expect: Expectation, overSocket?: Expectation, headers = ACCEPT) =>
    out.push({
      id: `native-api/${id}`,
      category: 'native-api',
      method: 'GET',
      target,
      headers,
      expect,
      ...(overSocket ? { overSocket } : {}),
    });
  const name = (why: RegExp): Expectation => ({ status: 400, message: new RegExp(`^name: .*${why.source}`) });
  const noRoute: Expectation = { status: 404, message: /no route GET / };
  // `/api/v1/files/<name>`: the name is a store key, so it passes the name rules first.
  get('files/enc-traversal', '/api/v1/files/..%2f..%2f..%2fetc%2fpasswd', name(DOTDOT));
  get('files/enc-absolute', '/api/v1/files/%2fetc%2fpasswd', name(/must be relative/));
  get('files/store-tmp', '/api/v1/files/.tmp-pxsec', name(STARTS));
  get('files/agent-tmp', '/api/v1/files/boot/.pxecache-tmp-pxsec', name(STARTS));
  get('files/enc-nul', '/api/v1/files/pxsec%00', name(CHARS));
  get('files/enc-backslash', '/api/v1/files/..%5c..%5cpxsec', name(CHARS));
  get('files/bad-percent', '/api/v1/files/pxsec%zz', { status: 400, message: /^name: has invalid percent-encoding$/ });
  get('files/component-300', `/api/v1/files/${'a'.repeat(300)}`, name(/longer than 255 bytes/));
  get('files/name-2000', `/api/v1/files/${'a/'.repeat(1000)}pxsec`, name(/longer than 1024 bytes/));
  get('files/config-root', '/api/v1/files/pxelinux.cfg/default', name(/falls inside "pxelinux.cfg"/));
  get('files/versions-dir', '/api/v1/files/boot/x-orig/0123456789abcdef', name(/ends with "-orig"/));
  get('files/empty-component', '/api/v1/files/boot//pxsec', name(/empty path component/));
  get('files/rtl', '/api/v1/files/pxsec%E2%80%AEgpj', name(CHARS));
  get('files/fullwidth', '/api/v1/files/%EF%BD%90xsec', name(CHARS));
  get('files/raw-traversal', '/api/v1/files/../../../etc/passwd', { status: 404, message: /no route GET \/etc\/passwd/ }); // prettier-ignore
  get('files/dot-segments', '/api/v1/files/%2e%2e/%2e%2e/etc/passwd', { status: 404, message: /no route GET \/api\/etc\/passwd/ }); // prettier-ignore
  get('files/raw-space', '/api/v1/files/pxsec x', name(CHARS), NODE_400);
  get('files/raw-nul', '/api/v1/files/px\u0000sec', name(CHARS), NODE_400);
  get('files/raw-backslash', '/api/v1/files/..\\..\\pxsec', { status: 404, message: /no route GET \/api\/pxsec/ }, NODE_400); // prettier-ignore
  get('files/unknown', '/api/v1/files/boot/pxsec-unknown', { status: 404, message: /no file named "boot\/pxsec-unknown"/ }); // prettier-ignore
  get('files/absolute-form', 'http://169.254.169.254/api/v1/files/pxsec', { status: 404, message: /no file named "pxsec"/ }); // prettier-ignore
  // `/api/v1/blobs/<sha256>`
  const sha: Expectation = { status: 400, message: /^sha256: must be 64 lowercase hex digits$/ };
  get('blobs/enc-traversal', '/api/v1/blobs/..%2f..%2f..%2fetc%2fpasswd', sha);
  get('blobs/uppercase', `/api/v1/blobs/${'A'.repeat(64)}`, sha);
  get('blobs/63', `/api/v1/blobs/${'a'.repeat(63)}`, sha);
  get('blobs/65', `/api/v1/blobs/${'a'.repeat(65)}`, sha);
  get('blobs/nul', `/api/v1/blobs/${'a'.repeat(64)}%00`, sha);
  get('blobs/fullwidth', `/api/v1/blobs/${'%EF%BC%90'.repeat(64)}`, sha);
  get('blobs/store-key', '/api/v1/blobs/..%2fdata%2fpxsec', sha);
  get('blobs/unknown', `/api/v1/blobs/${'0'.repeat(64)}`, { status: 404, message: /^no blob 0{64}$/ });
  get('blobs/extra-segment', `/api/v1/blobs/${'0'.repeat(64)}/..%2fx`, noRoute);
  // `/api/v1/changes` and `/api/v1/files` queries
  const cursor: Expectation = { status: 400, message: /^since: .* is not a cursor from this API$/ };
  const wait: Expectation = { status: 400, message: /^wait: .* is not a number of seconds$/ };
  const site: Expectation = { status: 404, message: /^no site "/ };
  for (const [id, v] of [
    ['negative', '-1'],
    ['text', 'pxsec'],
    ['exponent', '1e3'],
    ['hex', '0x10'],
    ['nul', '1%00'],
    ['traversal', '..%2f..%2fpxsec'],
    ['huge', '9'.repeat(17)],
    ['fullwidth', '%EF%BC%91'],
    ['fraction', '1.5'],
    ['space', '%201'],
    ['nan', 'NaN'],
  ]) {
    // prettier-ignore
    get(`changes/since-${id}`, `/api/v1/changes?since=${v}`, cursor);
    get(`files/since-${id}`, `/api/v1/files?since=${v}`, cursor);
  }
  for (const [id, v] of [
    ['negative', '-1'],
    ['text', 'pxsec'],
    ['exponent', '1e3'],
    ['infinity', 'Infinity'],
    ['hex', '0x10'],
    ['nul', '1%00'],
    ['comma', '1,5'],
  ]) {
    // prettier-ignore
    get(`changes/wait-${id}`, `/api/v1/changes?wait=${v}`, wait);
    get(`files/wait-${id}`, `/api/v1/files?wait=${v}`, wait);
    get(`site-configs/wait-${id}`, `/api/v1/sites/${SITE}/configs?wait=${v}`, wait);
  }
  for (const [id, v] of [
    ['traversal', '..%2f..%2fetc'],
    ['upper', 'DEFAULT'],
    ['nul', 'default%00'],
    ['slash', `${SITE}%2f..`],
    ['fullwidth', '%EF%BD%85ast'],
    ['cyrillic', '%D0%B5ast'],
    ['empty', ''],
    ['long', 'e'.repeat(300)],
  ]) {
    // prettier-ignore
    get(`changes/site-${id}`, `/api/v1/changes?site=${v}`, site);
    get(`site-configs/${id}`, `/api/v1/sites/${v}/configs`, v === '' ? noRoute : { status: 404, message: /^no site "/ }); // prettier-ignore
  }
  // `since` ahead of the log: everything, complete (what an agent gets after the store was replaced).
  out.push({
    id: 'native-api/changes/since-ahead',
    category: 'native-api',
    method: 'GET',
    target: `/api/v1/changes?since=${'9'.repeat(16)}`,
    headers: ACCEPT,
    expect: { status: 200, message: /"complete":true/ },
    accepted: { why: 'a cursor the log cannot reach answers the full document', creates: { kind: 'nothing' } },
  });
  // `POST /api/v1/fetch`: hostile fields of both forms.
  const post = (id: string, body: string, expect: Expectation, target = '/api/v1/fetch') =>
    out.push({ id: `native-api/${id}`, category: 'native-api', method: 'POST', target, headers: JSON_TYPE, body, expect }); // prettier-ignore
  const field = (f: string, why: RegExp): Expectation => ({ status: 400, message: new RegExp(`^${f}: .*${why.source}`) }); // prettier-ignore
  const url = 'http://127.0.0.1/pxsec/vmlinuz';
  post('fetch/name-traversal', JSON.stringify({ name: '../../pxsec', url }), field('name', DOTDOT));
  post('fetch/name-absolute', JSON.stringify({ name: '/etc/pxsec', url }), field('name', /must be relative/));
  post('fetch/name-config', JSON.stringify({ name: 'pxelinux.cfg/default', url }), field('name', /falls inside/));
  post('fetch/name-nul', JSON.stringify({ name: 'pxsec\u0000', url }), field('name', CHARS));
  post('fetch/name-orig', JSON.stringify({ name: 'boot/pxsec-orig', url }), field('name', /ends with "-orig"/));
  post('fetch/name-long', JSON.stringify({ name: 'a/'.repeat(600) + 'pxsec', url }), field('name', /longer than 1024/));
  post('fetch/name-backslash', JSON.stringify({ name: '..\\pxsec', url }), field('name', CHARS));
  post(
    'fetch/url-file',
    JSON.stringify({ name: 'sec/pxsec', url: 'file:///etc/passwd' }),
    field('url', /scheme "file"/),
  );
  post('fetch/url-long', JSON.stringify({ name: 'sec/pxsec', url: `http://x/${'a'.repeat(9000)}` }), field('url', /longer than 8192/)); // prettier-ignore
  post('fetch/url-relative', JSON.stringify({ name: 'sec/pxsec', url: '../pxsec' }), field('url', /not a valid absolute URL/)); // prettier-ignore
  post('fetch/mixed-forms', JSON.stringify({ name: 'sec/pxsec', url, prefix: '../pxsec' }), field('path', /is required with "prefix"/)); // prettier-ignore
  post('fetch/wait-negative', JSON.stringify({ name: 'sec/pxsec', url }), wait, '/api/v1/fetch?wait=-1');
  post('fetch/wait-text', JSON.stringify({ name: 'sec/pxsec', url }), wait, '/api/v1/fetch?wait=forever');
  return out;
}

function siteEntries(): CorpusEntry[] {
  const sites: [string, string][] = [
    ['enc-dotdot', '%2e%2e'],
    ['enc-traversal', '..%2f..%2fpxsec'],
    ['upper', 'EAST'],
    ['nul', `${SITE}%00`],
    ['slash', `${SITE}%2f..`],
    ['fullwidth', '%EF%BD%85ast'],
    ['cyrillic', '%D0%B5ast'],
    ['zero-width', `${SITE}%E2%80%8B`],
    ['long', 'e'.repeat(300)],
    ['semicolon', `${SITE};pxsec`],
    ['space', `${SITE}%20`],
    ['unknown', 'pxsec'],
  ];
  // `%2e%2e` is a dot segment to the URL parser: `/sites/%2e%2e/tftp/...` is the default site's route.
  const post: Expectation = { status: '4xx', message: /^no route POST |^prefix: is required$/ };
  return sites.flatMap(([id, site]): CorpusEntry[] => [
    { id: `site/fetch/${id}`, category: 'site', method: 'POST', target: `/sites/${site}/tftp/fetch_boot_file`, headers: FORM, body: '', expect: post }, // prettier-ignore
    { id: `site/server-name/${id}`, category: 'site', method: 'GET', target: `/sites/${site}/tftp/serverName`, headers: ACCEPT, expect: id === 'enc-dotdot' ? { status: 200, message: /serverName/ } : { status: 404, message: /^no route GET / }, ...(id === 'enc-dotdot' ? { accepted: { why: 'the URL parser resolves /sites/%2e%2e/ to the default site', creates: { kind: 'nothing' as const } } } : {}) }, // prettier-ignore
    { id: `site/pxeconfig/${id}`, category: 'site', method: 'DELETE', target: `/sites/${site}/tftp/PXELinux/${MAC}`, headers: ACCEPT, expect: id === 'enc-dotdot' ? { status: 200, message: /^$/ } : { status: 404, message: /^no route DELETE / }, ...(id === 'enc-dotdot' ? { accepted: { why: 'resolves to the default site; deleting a missing config is a 200 in smart-proxy', creates: { kind: 'nothing' as const } } } : {}) }, // prettier-ignore
  ]);
}

function methodEntries(): CorpusEntry[] {
  const e = (method: string, target: string, message: RegExp, status = 404): CorpusEntry => ({
    id: `method/${method.toLowerCase()}${target}`,
    category: 'method',
    method,
    target,
    headers: ACCEPT,
    expect: { status, message },
  });
  return [
    e('PUT', '/tftp/fetch_boot_file', /^no route PUT /),
    e('PATCH', '/api/v1/fetch', /no route PATCH /),
    e('OPTIONS', '/tftp/fetch_boot_file', /^no route OPTIONS /),
    e('GET', '/tftp/fetch_boot_file', /^no route GET /),
    e('DELETE', '/api/v1/files/pxsec', /no route DELETE /),
    e('PUT', '/api/v1/blobs/' + '0'.repeat(64), /no route PUT /),
    e('POST', '/api/v1/admin/pxsec', /no route POST /),
    e('PROPFIND', '/tftp/', /^no route PROPFIND /),
  ];
}

/** Benign-but-odd URLs: the WHATWG parser normalises them to an ordinary loopback URL, so they are fetched. */
function normalisedUrlEntries(ctx: CorpusContext): CorpusEntry[] {
  const port = new URL(ctx.upstream).port;
  const e = (id: string, prefix: string, path: string, why: string): CorpusEntry => ({
    id: `lookalike/form/accepted-${id}`,
    category: 'lookalike',
    ...nameRequest('form', { prefix, path }),
    expect: { status: 200, message: /^$/ },
    accepted: {
      why,
      creates: {
        kind: 'boot-file',
        name: `${prefix}-vmlinuz`,
        basename: 'vmlinuz',
        upstreamPath: `/media/${id}/vmlinuz`,
      },
    },
  });
  return [
    e('fullwidth-host', 'sec/fw', `http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:${port}/media/fullwidth-host/vmlinuz`, 'IDNA maps fullwidth digits to 127.0.0.1'), // prettier-ignore
    e('upper-scheme', 'sec/up', `HTTP://127.0.0.1:${port}/media/upper-scheme/vmlinuz`, 'schemes are case-insensitive'),
    e('leading-space', 'sec/sp', ` ${ctx.upstream}/media/leading-space/vmlinuz`, 'URL parsers strip leading spaces'),
    {
      id: 'scheme/form/accepted-nfs',
      category: 'scheme',
      ...nameRequest('form', { prefix: 'sec/nfs', path: 'nfs://127.0.0.1/export/pxsec/vmlinuz' }),
      expect: { status: 200, message: /^$/ },
      accepted: { why: 'nfs media are a recorded no-op, as in smart-proxy', creates: { kind: 'nothing' } },
    },
  ];
}

export function buildCorpus(ctx: CorpusContext): CorpusEntry[] {
  const all = [
    ...nameEntries(ctx),
    ...schemeEntries(),
    ...credentialEntries(ctx),
    ...normalisedUrlEntries(ctx),
    ...metadataEntries(),
    ...macEntries(),
    ...variantEntries(),
    ...oversizedEntries(),
    ...contentTypeEntries(),
    ...nativeApiEntries(),
    ...siteEntries(),
    ...methodEntries(),
  ];
  const seen = new Set<string>();
  for (const entry of all) {
    if (seen.has(entry.id)) throw new Error(`corpus: duplicate id ${entry.id}`);
    seen.add(entry.id);
  }
  return all;
}

/** The bytes of a body. */
export function bodyBytes(spec: BodySpec): Uint8Array {
  if (typeof spec === 'string') return new TextEncoder().encode(spec);
  const head = Buffer.from(spec.head);
  const tail = Buffer.from(spec.tail);
  const out = Buffer.alloc(spec.bytes, spec.repeat);
  head.copy(out, 0);
  tail.copy(out, spec.bytes - tail.length);
  return out;
}
