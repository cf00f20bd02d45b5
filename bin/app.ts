#!/usr/bin/env -S npx tsx
/**
 * CDK entry point (cdk.json: `npx tsx bin/app.ts`). Stacks are
 * environment-agnostic, so `npx cdk synth --quiet` needs no AWS credentials;
 * `cdk deploy` takes the account and region from the CLI profile.
 * cdk-nag (AwsSolutions) runs at synth and fails it on any unacknowledged finding.
 */
import { buildApp } from '../lib/app.ts';

buildApp({ nag: true }).app.synth();
