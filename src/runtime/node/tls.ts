import type { Context } from 'hono';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ServerOptions } from 'node:https';
import { TLSSocket } from 'node:tls';
import type { ServeConfig } from '../../core/config.js';
import { ConfigError, describe } from '../../core/errors.js';
import type { Logger } from '../../core/ports.js';
import type { ClientCertificate } from '../../http/deps.js';

/**
 * The HTTPS listener of `serve`, as smart-proxy's (`https_port`, `ssl_certificate`, `ssl_private_key`,
 * `ssl_ca_file`, `trusted_hosts`): a client certificate is required and must chain to `--ssl-ca-file`, checked by
 * OpenSSL during the handshake (`requestCert` + `rejectUnauthorized`), so a connection without one, from another CA,
 * or expired never carries a request. Which verified certificates may call the smart-proxy routes is the CN
 * allow-list, checked per request in http/auth.ts with the CN this module reads off the socket.
 */
export interface HttpsSettings {
  readonly port: number;
  readonly serverOptions: ServerOptions;
  /** The server certificate's subject and expiry, for the start-up log. */
  readonly certificate: { readonly subject: string; readonly validTo: string };
}

const SMART_PROXY_NAME: Record<string, string> = {
  'ssl-certificate': 'ssl_certificate',
  'ssl-private-key': 'ssl_private_key',
  'ssl-ca-file': 'ssl_ca_file',
  'trusted-hosts': 'trusted_hosts',
};
type TlsOption = 'ssl-certificate' | 'ssl-private-key' | 'ssl-ca-file' | 'trusted-hosts';
const TLS_OPTIONS: readonly TlsOption[] = ['ssl-certificate', 'ssl-private-key', 'ssl-ca-file', 'trusted-hosts'];

/** Checks the listener options together and reads the PEM files; every problem at once, as a ConfigError. */
export async function loadHttps(config: ServeConfig, logger: Logger): Promise<HttpsSettings | null> {
  const port = config['https-port'];
  const issues: string[] = [];
  if (port === undefined) {
    for (const option of TLS_OPTIONS)
      if (config[option] !== undefined) issues.push(`--${option}: only used with --https-port`);
    if (!config.http) issues.push('--no-http: needs --https-port (nothing would listen)');
    if (issues.length) throw new ConfigError(issues);
    return null;
  }
  for (const option of TLS_OPTIONS)
    if ((config[option] ?? '').trim() === '')
      issues.push(`--${option}: required with --https-port (smart-proxy's ${SMART_PROXY_NAME[option]})`);
  if (config.http && port !== 0 && port === config.port)
    issues.push(`--https-port ${port}: the same as --port; HTTP and HTTPS need a port each`);

  const read = async (option: TlsOption) => {
    const path = config[option];
    if (path === undefined || path.trim() === '') return undefined;
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      issues.push(`--${option}: cannot read ${path}: ${describe(err)}`);
      return undefined;
    }
  };
  const [certPem, keyPem, caPem] = [
    await read('ssl-certificate'),
    await read('ssl-private-key'),
    await read('ssl-ca-file'),
  ];
  const cert = certPem === undefined ? undefined : parseCertificates(certPem, 'ssl-certificate', issues)[0];
  const key = keyPem === undefined ? undefined : parseKey(keyPem, issues);
  if (caPem !== undefined) parseCertificates(caPem, 'ssl-ca-file', issues);
  if (cert && key && !cert.checkPrivateKey(key))
    issues.push(`--ssl-private-key: is not the key of --ssl-certificate (${cert.subject.replace(/\n/g, ', ')})`);
  if (issues.length || !cert || certPem === undefined || keyPem === undefined || caPem === undefined)
    throw new ConfigError(issues);

  if (Date.parse(cert.validTo) < Date.now())
    logger.warn('--ssl-certificate has expired: clients will refuse the HTTPS listener', { validTo: cert.validTo });
  return {
    port,
    certificate: { subject: cert.subject.replace(/\n/g, ', '), validTo: cert.validTo },
    serverOptions: {
      cert: certPem,
      key: keyPem,
      // Only this CA: Node's default store (public CAs) must not vouch for a client.
      ca: caPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    },
  };
}

function parseCertificates(pem: string, option: TlsOption, issues: string[]): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) issues.push(`--${option}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file`);
  const parsed: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      parsed.push(new X509Certificate(block));
    } catch (err) {
      issues.push(`--${option}: certificate ${i + 1} does not parse: ${describe(err)}`);
    }
  }
  return parsed;
}

function parseKey(pem: string, issues: string[]): KeyObject | undefined {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    issues.push(`--ssl-private-key: not a usable unencrypted PEM private key: ${describe(err)}`);
    return undefined;
  }
}

/**
 * The verified client certificate of a request on the HTTPS listener; null on the HTTP listener and outside
 * @hono/node-server (`app.request()`). `authorized` is OpenSSL's verdict; with `rejectUnauthorized` an unverified
 * peer never gets this far, and checking it again keeps a future listener option from silently trusting one.
 */
export function nodeClientCertificate(c: Context): ClientCertificate | null {
  const env = c.env as { incoming?: { socket?: unknown }; server?: { incoming?: { socket?: unknown } } } | undefined;
  const socket = env?.incoming?.socket ?? env?.server?.incoming?.socket;
  if (!(socket instanceof TLSSocket) || !socket.authorized) return null;
  // Several CNs come as an array: ambiguous, so none (smart-proxy would take the first; refusing is safer).
  const cn: unknown = socket.getPeerCertificate().subject?.CN;
  return { cn: typeof cn === 'string' && cn !== '' ? cn : null };
}
