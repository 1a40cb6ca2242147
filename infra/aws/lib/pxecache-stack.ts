import * as path from 'node:path';
import { Aws, CfnOutput, Duration, RemovalPolicy, SecretValue, Stack, type StackProps } from 'aws-cdk-lib';
import { DomainName, HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Architecture, FunctionUrlAuthType, InvokeMode, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';

/** Foreman's mutual TLS: an API Gateway HTTP API on a custom domain that verifies client certificates. */
export interface MutualTlsProps {
  /** The custom domain Foreman calls (its smart proxy URL), e.g. pxecache.example.com. */
  readonly domainName: string;
  /** An ACM certificate for that domain, in the stack's region. */
  readonly certificateArn: string;
  /** The truststore (PEM bundle of the CA(s) that issued Foreman's client certificate): s3://<bucket>/<key>. */
  readonly truststoreUri: string;
}

export interface PxecacheStackProps extends StackProps {
  /** The repository root: NodejsFunction bundles src/adapters/aws-lambda.ts with the root's package-lock.json. */
  readonly projectRoot: string;
  /** Key prefix of the store inside the bucket, without slashes at either end: the store is s3://<bucket>/<prefix>. */
  readonly prefix?: string;
  /** Secrets Manager secret whose SecretString is the PXECACHE_TOKENS list (hashed entries). */
  readonly tokensSecretName?: string;
  /** A version id of that secret: changing it redeploys the function with the new tokens. Default: AWSCURRENT. */
  readonly tokensSecretVersion?: string;
  /** Who may assume the agents' read-only role (an IAM principal ARN). Default: the account root. */
  readonly agentPrincipalArn?: string;
  /** Lambda memory, MiB. Default 1024. */
  readonly memoryMiB?: number;
  /** Client-certificate CNs allowed on the smart-proxy routes (PXECACHE_TRUSTED_HOSTS), comma-separated. */
  readonly trustedHosts?: string;
  /** Optional: an HTTP API with a mutual-TLS custom domain for Foreman. */
  readonly mutualTls?: MutualTlsProps;
}

/** The actions the fetcher uses on objects under its prefix (HeadObject is authorised by s3:GetObject). */
export const FETCHER_OBJECT_ACTIONS = [
  's3:GetObject',
  's3:PutObject',
  's3:DeleteObject',
  's3:AbortMultipartUpload',
  's3:ListMultipartUploadParts',
] as const;

/** The actions edge agents reading the bucket directly need: nothing that writes. */
export const AGENT_READ_ACTIONS = ['s3:GetObject', 's3:ListBucket'] as const;

const PREFIX = /^[A-Za-z0-9._=@,+-]+(\/[A-Za-z0-9._=@,+-]+)*$/;

/**
 * pxecache on AWS: the S3 store, the fetcher on Lambda (Function URL, optionally an HTTP API with mutual TLS for
 * Foreman) and a read-only role for edge agents that read the bucket directly.
 */
export class PxecacheStack extends Stack {
  readonly bucket: s3.Bucket;
  readonly fetcher: NodejsFunction;
  readonly agentRole: iam.Role;
  readonly agentPolicy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: PxecacheStackProps) {
    super(scope, id, props);
    const prefix = props.prefix ?? 'pxecache';
    if (!PREFIX.test(prefix) || prefix.split('/').some((c) => c === '.' || c === '..'))
      throw new Error(
        `prefix "${prefix}": one or more /-separated components of [A-Za-z0-9._=@,+-], no slash at the ends`,
      );
    const memoryMiB = props.memoryMiB ?? 1024;
    if (!Number.isInteger(memoryMiB) || memoryMiB < 512 || memoryMiB > 10240)
      throw new Error(`memoryMiB ${memoryMiB}: an integer from 512 to 10240`);

    // Objects are immutable (versions are content-addressed and written create-only; pointers move by conditional
    // writes and the catalog keeps their history), so S3 versioning would only keep what GC deletes, and bill it.
    this.bucket = new s3.Bucket(this, 'Store', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      versioned: false,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: 'abort-incomplete-multipart', abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const objects = this.bucket.arnForObjects(`${prefix}/*`);
    const underPrefix = { StringLike: { 's3:prefix': [`${prefix}/*`] } };

    // A fixed name lets the function name itself (PXECACHE_SELF_FUNCTION) and its invoke permission be built
    // without referring to the function's own attributes, which CloudFormation would reject as a cycle.
    const functionName = `${this.stackName}-fetcher`;
    const tokensRef = SecretValue.secretsManager(props.tokensSecretName ?? 'pxecache/tokens', {
      ...(props.tokensSecretVersion !== undefined && { versionId: props.tokensSecretVersion }),
    });
    const logGroup = new LogGroup(this, 'FetcherLogs', {
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.fetcher = new NodejsFunction(this, 'Fetcher', {
      functionName,
      entry: path.join(props.projectRoot, 'src/adapters/aws-lambda.ts'),
      handler: 'handler',
      projectRoot: props.projectRoot,
      depsLockFilePath: path.join(props.projectRoot, 'package-lock.json'),
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      // A fetch streams: it holds (queue + 2) S3 parts of 5 MiB (~25 MiB) plus the SDK, whatever the file's size.
      // 1024 MB is for the CPU share (Lambda's CPU grows with memory): sha256 and TLS at tens of MiB/s, so a 2 GiB
      // ISO fits well inside the 15 minutes.
      memorySize: memoryMiB,
      timeout: Duration.minutes(15),
      logGroup,
      // A fetch that failed or timed out is recorded as failed by the app; Lambda must not run it again behind its back.
      retryAttempts: 0,
      environment: {
        PXECACHE_STORE: `s3://${this.bucket.bucketName}/${prefix}`,
        PXECACHE_TOKENS: tokensRef.unsafeUnwrap(),
        PXECACHE_SELF_FUNCTION: functionName,
        ...(props.trustedHosts !== undefined && { PXECACHE_TRUSTED_HOSTS: props.trustedHosts }),
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        minify: true,
        sourceMap: true,
        format: OutputFormat.ESM,
        target: 'node22',
        // Some dependencies still call require(): give the ESM bundle one.
        banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
        // The SDK version the tests ran against, not the one the runtime happens to ship.
        bundleAwsSDK: true,
      },
    });

    const role = this.fetcher.role;
    if (role === undefined) throw new Error('the fetcher has no role');
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'StoreObjects', actions: [...FETCHER_OBJECT_ACTIONS], resources: [objects] }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'StoreList',
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: underPrefix,
      }),
    );
    // IAM has no s3:prefix condition key for ListBucketMultipartUploads (a condition on it would never match): the
    // listing shows upload keys and ids only; aborting stays limited to the prefix by the statement above.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'StoreStaleUploads',
        actions: ['s3:ListBucketMultipartUploads'],
        resources: [this.bucket.bucketArn],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'InvokeSelf',
        actions: ['lambda:InvokeFunction'],
        resources: [`arn:${Aws.PARTITION}:lambda:${Aws.REGION}:${Aws.ACCOUNT_ID}:function:${functionName}`],
      }),
    );

    // Foreman cannot sign SigV4 requests and agents carry bearer tokens: the URL is public and the app authenticates
    // (bearer tokens on /api/v1; the smart-proxy routes want a verified client certificate, see mutualTls).
    const url = this.fetcher.addFunctionUrl({ authType: FunctionUrlAuthType.NONE, invokeMode: InvokeMode.BUFFERED });

    if (props.mutualTls !== undefined) this.addMutualTls(props.mutualTls);

    this.agentPolicy = new iam.ManagedPolicy(this, 'AgentReadPolicy', {
      description: `pxecache edge agents: read s3://${prefix}/ in the store bucket, nothing else`,
      statements: [
        new iam.PolicyStatement({ sid: 'ReadObjects', actions: ['s3:GetObject'], resources: [objects] }),
        new iam.PolicyStatement({
          sid: 'ListPrefix',
          actions: ['s3:ListBucket'],
          resources: [this.bucket.bucketArn],
          conditions: underPrefix,
        }),
      ],
    });
    this.agentRole = new iam.Role(this, 'AgentRole', {
      description: 'pxecache edge agents (pxecache agent --source s3://...): read-only access to the store',
      assumedBy:
        props.agentPrincipalArn === undefined
          ? new iam.AccountRootPrincipal()
          : new iam.ArnPrincipal(props.agentPrincipalArn),
      managedPolicies: [this.agentPolicy],
      maxSessionDuration: Duration.hours(12),
    });

    new CfnOutput(this, 'BucketName', { value: this.bucket.bucketName });
    new CfnOutput(this, 'StoreUrl', { value: `s3://${this.bucket.bucketName}/${prefix}` });
    new CfnOutput(this, 'FunctionUrl', { value: url.url });
    new CfnOutput(this, 'FunctionName', { value: functionName });
    new CfnOutput(this, 'AgentRoleArn', { value: this.agentRole.roleArn });
    new CfnOutput(this, 'AgentPolicyArn', { value: this.agentPolicy.managedPolicyArn });
  }

  private addMutualTls(mtls: MutualTlsProps): void {
    const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(mtls.truststoreUri);
    if (match === null || match[1] === undefined || match[2] === undefined)
      throw new Error(`truststoreUri "${mtls.truststoreUri}": s3://<bucket>/<key>`);
    const domain = new DomainName(this, 'ForemanDomain', {
      domainName: mtls.domainName,
      certificate: Certificate.fromCertificateArn(this, 'ForemanDomainCertificate', mtls.certificateArn),
      mtls: { bucket: s3.Bucket.fromBucketName(this, 'Truststore', match[1]), key: match[2] },
    });
    const api = new HttpApi(this, 'ForemanApi', {
      description: 'pxecache behind API Gateway mutual TLS (Foreman client certificates)',
      defaultIntegration: new HttpLambdaIntegration('Fetcher', this.fetcher),
      defaultDomainMapping: { domainName: domain },
      // The execute-api URL would skip the client-certificate check.
      disableExecuteApiEndpoint: true,
    });
    new CfnOutput(this, 'ForemanUrl', { value: `https://${mtls.domainName}` });
    new CfnOutput(this, 'ForemanDomainTarget', {
      description: 'CNAME the custom domain to this',
      value: domain.regionalDomainName,
    });
    new CfnOutput(this, 'ForemanApiId', { value: api.apiId });
  }
}
