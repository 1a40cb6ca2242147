/**
 * A throwaway PKI made with the `openssl` command line, shaped like Foreman's (a Puppet-style CA, a server
 * certificate for the proxy, client certificates named by FQDN): the CA, a server certificate for the given IP
 * addresses, and client certificates trusted, from another CA, expired, and with an untrusted CN.
 *
 * The expired certificate is issued with `openssl ca -startdate/-enddate`, which every OpenSSL 3 has; `openssl x509
 * -not_before/-not_after` needs 3.4 and `-days` cannot go into the past.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PemPair {
  readonly cert: string;
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TestPki {
  readonly dir: string;
  /** The CA clients must chain to (`--ssl-ca-file`), PEM and path. */
  readonly ca: string;
  readonly caFile: string;
  /** The server certificate (SAN: the given IPs), signed by the CA. */
  readonly server: PemPair;
  /** CN foreman.example.com, signed by the CA: what Foreman presents. */
  readonly trusted: PemPair;
  /** CN foreman.example.com, but signed by another CA of the same name. */
  readonly wrongCa: PemPair;
  /** CN foreman.example.com, signed by the CA, valid only on 2020-01-01. */
  readonly expired: PemPair;
  /** CN intruder.example.com, signed by the CA, with subjectAltName DNS:foreman.example.com (SANs do not count). */
  readonly untrusted: PemPair;
}

const CA_CONFIG = `[ca]
default_ca = test
[test]
database = db/index.txt
serial = db/serial
new_certs_dir = db
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[any]
commonName = supplied
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth, serverAuth
`;

export async function createTestPki(dir: string, serverIps: readonly string[]): Promise<TestPki> {
  await mkdir(join(dir, 'db'), { recursive: true });
  await writeFile(join(dir, 'db/index.txt'), '');
  await writeFile(join(dir, 'db/serial'), '1000\n');
  await writeFile(join(dir, 'ca.cnf'), CA_CONFIG);
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  const newKey = (name: string) =>
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);

  async function makeCa(name: string) {
    await newKey(name);
    await writeFile(
      join(dir, `${name}.ext`),
      'basicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n',
    );
    await openssl('req', '-new', '-key', `${name}.key`, '-subj', '/CN=Puppet CA: pxecache test', '-out', `${name}.csr`);
    await openssl(
      ...['x509', '-req', '-in', `${name}.csr`, '-signkey', `${name}.key`, '-days', '2'],
      ...['-extfile', `${name}.ext`, '-out', `${name}.pem`],
    );
  }

  async function issue(name: string, ca: string, cn: string, ext: string): Promise<PemPair> {
    await newKey(name);
    await openssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`);
    await writeFile(join(dir, `${name}.ext`), ext);
    await openssl(
      ...['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial'],
      ...['-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`],
    );
    return pair(name);
  }

  async function pair(name: string): Promise<PemPair> {
    const certFile = join(dir, `${name}.pem`);
    const keyFile = join(dir, `${name}.key`);
    return { cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8'), certFile, keyFile };
  }

  const client = 'basicConstraints = critical, CA:FALSE\nextendedKeyUsage = clientAuth, serverAuth\n';
  await makeCa('ca');
  await makeCa('other-ca');
  const server = await issue(
    'server',
    'ca',
    'pxecache.example.com',
    `basicConstraints = critical, CA:FALSE\nextendedKeyUsage = serverAuth\n` +
      `subjectAltName = ${serverIps.map((ip) => `IP:${ip}`).join(', ')}\n`,
  );
  const trusted = await issue('trusted', 'ca', 'foreman.example.com', client);
  const wrongCa = await issue('wrong-ca', 'other-ca', 'foreman.example.com', client);
  const untrusted = await issue(
    'untrusted',
    'ca',
    'intruder.example.com',
    `${client}subjectAltName = DNS:foreman.example.com\n`,
  );
  await newKey('expired');
  await openssl('req', '-new', '-key', 'expired.key', '-subj', '/CN=foreman.example.com', '-out', 'expired.csr');
  await openssl(
    ...['ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca.key', '-in', 'expired.csr'],
    ...['-extensions', 'client', '-startdate', '20200101000000Z', '-enddate', '20200102000000Z'],
    ...['-notext', '-out', 'expired.pem'],
  );
  const caFile = join(dir, 'ca.pem');
  return {
    dir,
    ca: await readFile(caFile, 'utf8'),
    caFile,
    server,
    trusted,
    wrongCa,
    expired: await pair('expired'),
    untrusted,
  };
}
