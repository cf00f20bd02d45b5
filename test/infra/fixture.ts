/**
 * Builds the CDK app once per test file (synth with bundling costs seconds)
 * into a temporary cloud-assembly folder, plus helpers to read templates.
 */
import { Stack, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type ObligationChainApp } from '../../lib/app.ts';

export interface Fixture {
  readonly built: ObligationChainApp;
  readonly templates: { chain: Template; data: Template; backend: Template; iot: Template };
  dispose(): void;
}

export function buildFixture(): Fixture {
  const outdir = mkdtempSync(join(tmpdir(), 'oc-cdk-'));
  const built = buildApp({ appProps: { outdir } });
  const templates = {
    chain: Template.fromStack(built.chain),
    data: Template.fromStack(built.data),
    backend: Template.fromStack(built.backend),
    iot: Template.fromStack(built.iot),
  };
  return { built, templates, dispose: () => rmSync(outdir, { recursive: true, force: true }) };
}

/** The logical id of a construct's CloudFormation resource. */
export function logicalId(construct: IConstruct): string {
  const child = construct.node.defaultChild as CfnElement | undefined;
  if (child === undefined) throw new Error(`${construct.node.path} has no default child`);
  return Stack.of(child).getLogicalId(child);
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * Renders an intrinsic as text: Fn::Join of strings and pseudo refs, e.g.
 * `arn:{AWS::Partition}:iot:{AWS::Region}:...`. Other intrinsics become `{?}`.
 */
export function render(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, Json>;
    const join = obj['Fn::Join'];
    if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) {
      return join[1].map(render).join(join[0]);
    }
    const ref = obj['Ref'];
    if (typeof ref === 'string') return `{${ref}}`;
  }
  return '{?}';
}

/** Every action granted by the IAM policies attached to the role of a function. */
export function actionsOfRole(template: Template, roleLogicalId: string): Array<{ action: string; resources: unknown[] }> {
  const policies = template.findResources('AWS::IAM::Policy');
  const out: Array<{ action: string; resources: unknown[] }> = [];
  for (const policy of Object.values(policies)) {
    const props = policy['Properties'] as { Roles: unknown[]; PolicyDocument: { Statement: Array<{ Action: string | string[]; Resource: unknown }> } };
    const attached = props.Roles.some((role) => JSON.stringify(role) === JSON.stringify({ Ref: roleLogicalId }));
    if (!attached) continue;
    for (const statement of props.PolicyDocument.Statement) {
      const actions = Array.isArray(statement.Action) ? statement.Action : [statement.Action];
      const resources = Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
      for (const action of actions) out.push({ action, resources });
    }
  }
  return out;
}
