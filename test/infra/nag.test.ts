import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { App, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../lib/app.ts';
import { ChainStack } from '../../lib/chain-stack.ts';

const outdir = mkdtempSync(join(tmpdir(), 'oc-nag-'));
after(() => rmSync(outdir, { recursive: true, force: true }));
const built = buildApp({ appProps: { outdir } });

function violationsOf(stack: Stack): string[] {
  const report = new AwsSolutionsChecks(stack.node.root).validateScope(stack);
  return report.violations.map(
    (v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
  );
}

describe('cdk-nag AwsSolutions', () => {
  for (const stack of [built.chain, built.data, built.backend, built.iot]) {
    it(`${stack.stackName} has no unacknowledged finding`, () => {
      assert.deepEqual(violationsOf(stack), []);
    });
  }

  it('a chain stack that joins another organisation\'s chain behind a P2P load balancer has no unacknowledged finding', () => {
    const app = new App({ outdir: join(outdir, 'p2p') });
    const stack = new ChainStack(app, 'OcChainP2p', { chainName: 'oc-chain', joinChain: 'a.example.org:8571', p2pAllowCidrs: ['203.0.113.0/24'] });
    assert.deepEqual(violationsOf(stack), []);
  });

  it('the checker does find an unacknowledged wildcard (control)', () => {
    const app = new App({ outdir: join(outdir, 'control') });
    const stack = new Stack(app, 'Control');
    const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    role.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] }));
    assert.ok(violationsOf(stack).some((v) => v.startsWith('AwsSolutions-IAM5[Resource::*]')));
  });

  it('every acknowledgement names one finding and gives a specific reason', () => {
    const acknowledged: Array<{ id: string; reason: string; path: string }> = [];
    const walk = (node: IConstruct): void => {
      for (const entry of node.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
          if (!id.includes('AwsSolutions-')) continue; // CDK's own acknowledgements (e.g. CloudFormation-Validate)
          acknowledged.push({ id, reason, path: node.node.path });
        }
      }
      for (const child of node.node.children) walk(child);
    };
    walk(built.app);
    assert.ok(acknowledged.length > 0);
    for (const { id, reason, path } of acknowledged) {
      assert.match(id, /AwsSolutions-[A-Z]+\d+(\[.+\])?$/, `${path}: ${id}`);
      if (/IAM[45]$/.test(id)) assert.fail(`${path}: ${id} must name the finding, e.g. IAM5[Resource::*]`);
      assert.ok(reason.length >= 40, `${path}: ${id} needs a specific reason`);
    }
    // Acknowledgements sit on the constructs that cause them, never on a whole stack.
    const stackPaths = new Set([built.chain, built.data, built.backend, built.iot].map((s) => s.node.path));
    assert.ok(!acknowledged.some((a) => stackPaths.has(a.path)));
  });
});
