#!/usr/bin/env -S npx tsx
/**
 * CDK entry point (cdk.json: `npx tsx bin/app.ts`). Stacks are
 * environment-agnostic, so `npx cdk synth --quiet` needs no AWS credentials;
 * `cdk deploy` takes the account and region from the CLI profile.
 * cdk-nag (AwsSolutions) runs at synth and fails it on any unacknowledged finding.
 */
import { buildTarget } from '../lib/app.ts';

// `-c target=localstack-free` selects the stack set of LocalStack's free plan (docs/deploy.md)
buildTarget({ nag: true }).app.synth();
