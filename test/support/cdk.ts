import { readFileSync } from 'node:fs';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import {
  BackupValidatorStack,
  type BackupValidatorStackProps,
} from '../../lib/stacks/backup-validator-stack.ts';

const CDK_JSON = new URL('../../cdk.json', import.meta.url);

/** The feature flags and defaults of cdk.json: `new App()` in a test does not read it. */
export function cdkJsonContext(): Record<string, unknown> {
  return (JSON.parse(readFileSync(CDK_JSON, 'utf8')) as { context: Record<string, unknown> }).context;
}

export interface SynthOptions {
  /** Bundle the Lambdas with esbuild (slow); off by default. */
  bundle?: boolean;
  /** Run cdk-nag AwsSolutions checks: any unacknowledged finding makes synthesis throw. */
  nag?: boolean;
  outdir?: string;
  /** Changes the stack before synthesis (tests that prove the checks bite). */
  beforeSynth?: (stack: BackupValidatorStack) => void;
}

export interface Synthesized {
  app: App;
  stack: BackupValidatorStack;
  template: Template;
}

/** Builds the stack the way `cdk synth` does (cdk.json context), without CloudFormation validation. */
export function synthStack(props: BackupValidatorStackProps = {}, options: SynthOptions = {}): Synthesized {
  const app = new App({
    context: {
      ...cdkJsonContext(),
      ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
    },
    builtinCloudFormationValidation: false,
    ...(options.outdir ? { outdir: options.outdir } : {}),
  });
  const stack = new BackupValidatorStack(app, 'BackupValidatorTest', props);
  options.beforeSynth?.(stack);
  if (options.nag !== false) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack, template: Template.fromStack(stack) };
}

type Cfn = unknown;

/**
 * A CloudFormation value as a readable string: pseudo parameters become fixed values,
 * `Fn::GetAtt` becomes `<LogicalId.Attr>` and `Ref` becomes `<LogicalId>`, joins are joined.
 */
export function flattenCfn(value: Cfn): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const v = value as Record<string, unknown>;
  if (v['Fn::Join']) {
    const [delimiter, parts] = v['Fn::Join'] as [string, Cfn[]];
    return parts.map(flattenCfn).join(delimiter);
  }
  if (v['Fn::GetAtt']) {
    const [id, attr] = v['Fn::GetAtt'] as [string, string];
    return `<${id}.${attr}>`;
  }
  if (v.Ref !== undefined) {
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': 'eu-west-1',
      'AWS::AccountId': '123456789012',
      'AWS::URLSuffix': 'amazonaws.com',
    };
    return pseudo[v.Ref as string] ?? `<${v.Ref as string}>`;
  }
  return JSON.stringify(value);
}

export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: Cfn | Cfn[];
  Condition?: Record<string, Record<string, unknown>>;
}

export function actionsOf(statement: Statement): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}

export function resourcesOf(statement: Statement): string[] {
  const resources = Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
  return resources.map(flattenCfn);
}

/** Every policy statement attached to a role (inline policies and AWS::IAM::Policy resources). */
export function statementsOfRole(template: Template, roleLogicalId: string): Statement[] {
  const statements: Statement[] = [];
  for (const policy of Object.values(template.findResources('AWS::IAM::Policy'))) {
    const roles = (policy.Properties.Roles as { Ref: string }[]).map((r) => r.Ref);
    if (roles.includes(roleLogicalId)) statements.push(...policy.Properties.PolicyDocument.Statement);
  }
  const role = template.findResources('AWS::IAM::Role')[roleLogicalId];
  for (const inline of (role?.Properties?.Policies ?? []) as {
    PolicyDocument: { Statement: Statement[] };
  }[]) {
    statements.push(...inline.PolicyDocument.Statement);
  }
  return statements;
}

/** The logical id of the single resource of a type whose id starts with a prefix. */
export function logicalIdStartingWith(template: Template, type: string, prefix: string): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => id.startsWith(prefix));
  if (ids.length !== 1)
    throw new Error(`expected one ${type} starting with ${prefix}, found ${ids.join(', ') || 'none'}`);
  return ids[0] as string;
}
