/**
 * SigV4 for the admin routes of the deployed HTTP API (IAM authoriser:
 * service `execute-api`), with smithy's SignatureV4 (what every AWS SDK v3
 * client signs with) over node:crypto's SHA-256, and the AWS SDK's default
 * credential chain (environment, SSO, web identity, ~/.aws files, ECS/EC2
 * metadata). test/cli/sigv4.test.ts checks it against AWS's published SigV4
 * test-suite vectors (get-vanilla, post-vanilla).
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { defaultProvider } from '@aws-sdk/credential-provider-node';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

type SourceData = string | ArrayBuffer | ArrayBufferView;

const bytes = (d: SourceData): Buffer =>
  typeof d === 'string' ? Buffer.from(d, 'utf8') : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d);

/** SHA-256 (or HMAC-SHA-256 with a secret) in the shape smithy's signer expects of `sha256`. */
export class NodeSha256 {
  private h: Hash | Hmac;
  constructor(private readonly secret?: SourceData) {
    this.h = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(this.secret));
  }
  update(data: SourceData): void {
    this.h.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {
    this.h = this.fresh();
  }
}

export interface SignInput {
  method: string;
  url: URL;
  /** Headers to send and sign (host is added). */
  headers?: Record<string, string>;
  body?: string;
  region: string;
  credentials: AwsCredentials | (() => Promise<AwsCredentials>);
  /** `execute-api` for API Gateway. */
  service?: string;
  /** For tests (the test vectors' date); now by default. */
  signingDate?: Date;
}

/** The headers of a signed request: the given ones plus host, x-amz-date, authorization (and x-amz-security-token with a session). */
export async function signRequest(input: SignInput): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    service: input.service ?? 'execute-api',
    region: input.region,
    credentials: input.credentials,
    sha256: NodeSha256,
    // API Gateway does not want x-amz-content-sha256 (an S3 convention); the payload hash is signed in any case
    applyChecksum: false,
  });
  const { url } = input;
  const query: Record<string, string | string[]> = {};
  for (const k of new Set(url.searchParams.keys())) {
    const all = url.searchParams.getAll(k);
    query[k] = all.length === 1 ? all[0]! : all;
  }
  const signed = await signer.sign(
    {
      method: input.method.toUpperCase(),
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      query,
      headers: { ...input.headers, host: url.host },
      ...(input.body === undefined ? {} : { body: input.body }),
    },
    input.signingDate ? { signingDate: input.signingDate } : {},
  );
  return signed.headers as Record<string, string>;
}

/** The AWS SDK's default credential chain, optionally for a named profile. */
export function defaultCredentials(profile?: string): () => Promise<AwsCredentials> {
  return defaultProvider(profile ? { profile } : {});
}
