import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { AGENT_READ_ACTIONS, PxecacheStack } from '../../infra/aws/lib/pxecache-stack.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const INFRA = fileURLToPath(new URL('../../infra/aws', import.meta.url));

interface Statement {
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}
const list = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
const WRITE = /^(s3:(Put|Delete|Abort|Create|Replicate|Restore)|lambda:Invoke)/;

function statementsOf(template: Template, type: string): Statement[] {
  return Object.values(template.findResources(type)).flatMap(
    (r) => (r as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties.PolicyDocument.Statement,
  );
}

describe('AWS CDK app (infra/aws)', () => {
  let template: Template;

  beforeAll(() => {
    const app = new App();
    template = Template.fromStack(new PxecacheStack(app, 'Test', { projectRoot: ROOT, prefix: 'pxe/store' }));
  }, 120_000);

  it('makes a private, encrypted, TLS-only bucket that aborts incomplete multipart uploads and is kept', () => {
    template.resourceCountIs('AWS::S3::Bucket', 1);
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        LifecycleConfiguration: {
          Rules: Match.arrayWith([
            Match.objectLike({ Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }),
          ]),
        },
      }),
    });
    const bucket = Object.values(template.findResources('AWS::S3::Bucket'))[0] as { Properties: object };
    expect(bucket.Properties).not.toHaveProperty('VersioningConfiguration');
    const deny = statementsOf(template, 'AWS::S3::BucketPolicy').filter((s) => s.Effect === 'Deny');
    expect(deny).toContainEqual(expect.objectContaining({ Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
  });

  it('runs the fetcher on nodejs22.x for 15 minutes with the store, tokens and its own name in its environment', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Timeout: 900,
      MemorySize: 1024,
      Handler: 'index.handler',
      FunctionName: 'Test-fetcher',
      Environment: {
        Variables: Match.objectLike({
          PXECACHE_STORE: { 'Fn::Join': ['', ['s3://', { Ref: Match.anyValue() }, '/pxe/store']] },
          PXECACHE_TOKENS: '{{resolve:secretsmanager:pxecache/tokens:SecretString:::}}',
          PXECACHE_SELF_FUNCTION: 'Test-fetcher',
        }),
      },
    });
    template.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'NONE', InvokeMode: 'BUFFERED' });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { MaximumRetryAttempts: 0 });
  });

  it('grants no wildcard action, and no write action on a wildcard resource', () => {
    const all = [
      ...statementsOf(template, 'AWS::IAM::Policy'),
      ...statementsOf(template, 'AWS::IAM::ManagedPolicy'),
      ...statementsOf(template, 'AWS::S3::BucketPolicy').filter((s) => s.Effect === 'Allow'),
    ];
    expect(all.length).toBeGreaterThan(4);
    for (const s of all.filter((x) => x.Effect === 'Allow')) {
      for (const action of list(s.Action)) {
        expect(action).not.toBe('*');
        expect(action).not.toBe('s3:*');
        expect(action).not.toMatch(/\*/);
        if (WRITE.test(action)) expect(list(s.Resource)).not.toContain('*');
      }
      expect(list(s.Resource)).not.toContain('*');
    }
  });

  it('limits the fetcher to its prefix, lists under it only, and invokes only itself', () => {
    const statements = statementsOf(template, 'AWS::IAM::Policy');
    const objects = statements.find((s) => list(s.Action).includes('s3:PutObject'));
    expect(JSON.stringify(objects?.Resource)).toContain('"/pxe/store/*"');
    const listBucket = statements.find((s) => list(s.Action).includes('s3:ListBucket'));
    expect(listBucket?.Condition).toEqual({ StringLike: { 's3:prefix': ['pxe/store/*'] } });
    const invoke = statements.find((s) => list(s.Action).includes('lambda:InvokeFunction'));
    expect(JSON.stringify(invoke?.Resource)).toMatch(/:function:Test-fetcher"\]\]\}$/);
  });

  it('gives agents a read-only managed policy on the prefix and a role that carries it', () => {
    const agent = statementsOf(template, 'AWS::IAM::ManagedPolicy');
    const actions = agent.flatMap((s) => list(s.Action));
    expect(new Set(actions)).toEqual(new Set(AGENT_READ_ACTIONS));
    expect(agent.every((s) => s.Effect === 'Allow')).toBe(true);
    expect(agent.find((s) => list(s.Action).includes('s3:ListBucket'))?.Condition).toEqual({
      StringLike: { 's3:prefix': ['pxe/store/*'] },
    });
    template.hasResourceProperties('AWS::IAM::Role', {
      ManagedPolicyArns: [{ Ref: Match.stringLikeRegexp('^AgentReadPolicy') }],
      AssumeRolePolicyDocument: {
        Statement: [Match.objectLike({ Action: 'sts:AssumeRole', Principal: { AWS: Match.anyValue() } })],
      },
    });
    const outputs = template.findOutputs('*');
    expect(Object.keys(outputs)).toEqual(expect.arrayContaining(['BucketName', 'FunctionUrl', 'AgentRoleArn']));
  });

  it('adds an HTTP API on a mutual-TLS custom domain when asked, without its execute-api endpoint', () => {
    const t = Template.fromStack(
      new PxecacheStack(new App(), 'Mtls', {
        projectRoot: ROOT,
        mutualTls: {
          domainName: 'pxecache.example.com',
          certificateArn: 'arn:aws:acm:eu-west-1:111111111111:certificate/abc',
          truststoreUri: 's3://trust-bucket/foreman/ca.pem',
        },
      }),
    );
    t.hasResourceProperties('AWS::ApiGatewayV2::DomainName', {
      DomainName: 'pxecache.example.com',
      MutualTlsAuthentication: { TruststoreUri: 's3://trust-bucket/foreman/ca.pem' },
    });
    t.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP', DisableExecuteApiEndpoint: true });
  });

  it('refuses a prefix with slashes at its ends', () => {
    expect(() => new PxecacheStack(new App(), 'Bad', { projectRoot: ROOT, prefix: '/pxe/' })).toThrow(/prefix/);
  });

  it('synthesises with the real CLI (npx cdk synth --quiet), offline', async () => {
    const run = promisify(execFile);
    const out = await run('npx', ['cdk', 'synth', '--quiet'], {
      cwd: INFRA,
      env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true' },
      timeout: 170_000,
    });
    expect(out.stderr).not.toMatch(/error/i);
  }, 180_000);
});
