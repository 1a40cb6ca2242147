import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { PxecacheStack, type MutualTlsProps } from '../lib/pxecache-stack.js';

/** The repository root: the nearest directory above the working directory (infra/aws) whose package is pxecache. */
function findProjectRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'pxecache') return dir;
    if (path.dirname(dir) === dir) throw new Error(`no pxecache package.json above ${from}`);
  }
}

const app = new App();
const context = (key: string): string | undefined => {
  const value: unknown = app.node.tryGetContext(key);
  return value === undefined || value === null || value === '' ? undefined : String(value);
};

const domainName = context('domainName');
const certificateArn = context('certificateArn');
const truststoreUri = context('truststoreUri');
let mutualTls: MutualTlsProps | undefined;
if (domainName !== undefined || certificateArn !== undefined || truststoreUri !== undefined) {
  if (domainName === undefined || certificateArn === undefined || truststoreUri === undefined)
    throw new Error('mutual TLS needs all of -c domainName=... -c certificateArn=... -c truststoreUri=s3://...');
  mutualTls = { domainName, certificateArn, truststoreUri };
}

const opt = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
const memory = context('memoryMiB');

new PxecacheStack(app, context('stackName') ?? 'Pxecache', {
  projectRoot: findProjectRoot(process.cwd()),
  ...opt('prefix', context('prefix')),
  ...opt('tokensSecretName', context('tokensSecretName')),
  ...opt('tokensSecretVersion', context('tokensSecretVersion')),
  ...opt('agentPrincipalArn', context('agentPrincipal')),
  ...opt('memoryMiB', memory === undefined ? undefined : Number(memory)),
  ...opt('trustedHosts', context('trustedHosts')),
  ...opt('mutualTls', mutualTls),
});
