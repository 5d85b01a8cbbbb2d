import { describe, expect, it } from 'vitest';
import { ARRIVAL_BATCHING_SECONDS } from '../../functions/arrival/handler.ts';
import { FUNCTION_ARN_PLACEHOLDERS } from '../../lib/pipeline/definition.ts';
import {
  actionsOf,
  flattenCfn,
  logicalIdStartingWith,
  resourcesOf,
  type Statement,
  statementsOfRole,
  synthStack,
} from '../support/cdk.ts';

/** Issue 12, read from the synthesized template: arrival runs, cross-region sources, redundancy per shard. */

const HOME_KEY = 'arn:aws:kms:eu-west-1:123456789012:key/1111-2222';
const AWAY_KEY = 'arn:aws:kms:us-east-2:123456789012:key/3333-4444';
const { template } = synthStack({
  sources: ['s3://prod-backups/db', 's3://media-backups'],
  validateOnArrival: true,
  kmsKeyArns: [HOME_KEY, AWAY_KEY],
});
type Resource = { Type: string; Properties: Record<string, unknown> };
const resources = template.toJSON().Resources as Record<string, Resource>;
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const roleOf = (prefix: string): Statement[] =>
  statementsOfRole(template, logicalIdStartingWith(template, 'AWS::IAM::Role', prefix));

describe('issue 12: arrival runs in the template', () => {
  const queueId = logicalIdStartingWith(template, 'AWS::SQS::Queue', 'Arrivals');
  const deadLettersId = logicalIdStartingWith(template, 'AWS::SQS::Queue', 'ArrivalDeadLetters');
  const machineId = logicalIdStartingWith(template, 'AWS::StepFunctions::StateMachine', 'StateMachine');

  it('each arrival rule queues the object (with its time, source and configuration), and no rule starts an execution itself', () => {
    const arrivalRules = ofType('AWS::Events::Rule').filter(([id]) => id.startsWith('ArrivalRule'));
    expect(arrivalRules).toHaveLength(2);
    for (const [, rule] of ofType('AWS::Events::Rule')) {
      for (const target of rule.Properties.Targets as Array<{ Arn: unknown }>) {
        expect(flattenCfn(target.Arn)).not.toContain(machineId);
      }
    }
    const buckets = arrivalRules.map(
      ([, r]) =>
        (r.Properties.EventPattern as { detail: { bucket: { name: string[] } } }).detail.bucket.name[0],
    );
    expect(buckets.sort()).toEqual(['media-backups', 'prod-backups']);
    for (const [, rule] of arrivalRules) {
      const [target] = rule.Properties.Targets as Array<{
        Arn: unknown;
        InputTransformer: { InputPathsMap: Record<string, string>; InputTemplate: string };
        DeadLetterConfig: { Arn: unknown };
      }>;
      expect(flattenCfn(target?.Arn)).toBe(`<${queueId}.Arn>`);
      expect(flattenCfn(target?.DeadLetterConfig.Arn)).toBe(`<${deadLettersId}.Arn>`);
      expect(Object.values(target?.InputTransformer.InputPathsMap ?? {}).sort()).toEqual(
        ['$.detail.bucket.name', '$.detail.object.key', '$.time'].sort(),
      );
      const template = flattenCfn(target?.InputTransformer.InputTemplate);
      expect(template).toContain('"trigger":"event"');
      expect(template).toMatch(/"sources":\["s3:\/\/(prod-backups\/db|media-backups)"\]/);
    }
  });

  it('the arrival Lambda takes the queue in batches (window, size, two at a time, partial failures), and the queue retries into a dead-letter queue with an alarm', () => {
    const [[, mapping] = []] = ofType('AWS::Lambda::EventSourceMapping');
    expect(flattenCfn(mapping?.Properties.EventSourceArn)).toBe(`<${queueId}.Arn>`);
    expect(flattenCfn(mapping?.Properties.FunctionName)).toContain('Arrival');
    expect(mapping?.Properties).toMatchObject({
      BatchSize: 1000,
      MaximumBatchingWindowInSeconds: ARRIVAL_BATCHING_SECONDS,
      ScalingConfig: { MaximumConcurrency: 2 },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    const queue = resources[queueId]?.Properties as {
      VisibilityTimeout: number;
      RedrivePolicy: { deadLetterTargetArn: unknown; maxReceiveCount: number };
      SqsManagedSseEnabled: boolean;
    };
    // AWS's guidance: six times the function's 60 s timeout, plus the batching window.
    expect(queue.VisibilityTimeout).toBeGreaterThanOrEqual(6 * 60 + ARRIVAL_BATCHING_SECONDS);
    expect(flattenCfn(queue.RedrivePolicy.deadLetterTargetArn)).toBe(`<${deadLettersId}.Arn>`);
    expect(queue.SqsManagedSseEnabled).toBe(true);
    const alarm = ofType('AWS::CloudWatch::Alarm').find(([, a]) =>
      JSON.stringify(a.Properties.Dimensions).includes(deadLettersId),
    );
    expect(alarm?.[1].Properties.AlarmActions).toHaveLength(1);
  });

  it('the arrival Lambda may start and describe executions of this state machine, and nothing else', () => {
    const statements = roleOf('ArrivalRole').filter((s) => actionsOf(s).some((a) => a.startsWith('states:')));
    const start = statements.find((s) => actionsOf(s).includes('states:StartExecution'));
    expect(resourcesOf(start as Statement)).toEqual([`<${machineId}>`]);
    const describe = statements.find((s) => actionsOf(s).includes('states:DescribeExecution'));
    expect(resourcesOf(describe as Statement)[0]).toContain(':execution:');
    const envOf = Object.values(template.findResources('AWS::Lambda::Function')).find((f) =>
      String(f.Properties.Description).endsWith(' arrival'),
    )?.Properties.Environment.Variables as Record<string, unknown>;
    expect(flattenCfn(envOf.STATE_MACHINE_ARN)).toBe(`<${machineId}>`);
  });

  it('without validate-on-arrival there is no arrival Lambda, queue or rule', () => {
    const plain = synthStack({ sources: ['s3://prod-backups/db'] }, { nag: false }).template;
    expect(
      Object.keys(plain.findResources('AWS::SQS::Queue')).filter((id) => id.startsWith('Arrival')),
    ).toEqual([]);
    expect(Object.keys(plain.findResources('AWS::Lambda::EventSourceMapping'))).toEqual([]);
    expect(
      Object.keys(plain.findResources('AWS::Events::Rule')).filter((id) => id.startsWith('Arrival')),
    ).toEqual([]);
  });
});

describe('issue 12: sources and keys in other regions', () => {
  it("Discover may ask each source bucket's region (the sandbox restores only same-region buckets)", () => {
    const location = roleOf('DiscoverRole').find((s) => actionsOf(s).includes('s3:GetBucketLocation'));
    expect(resourcesOf(location as Statement).sort()).toEqual([
      'arn:aws:s3:::media-backups',
      'arn:aws:s3:::prod-backups',
    ]);
  });

  it("kms:Decrypt is allowed through S3 in each key's own region", () => {
    const kms = roleOf('IntegrityRole').find((s) => actionsOf(s).includes('kms:Decrypt'));
    expect(resourcesOf(kms as Statement)).toEqual([HOME_KEY, AWAY_KEY]);
    expect(kms?.Condition?.StringEquals?.['kms:ViaService']).toEqual([
      's3.eu-west-1.amazonaws.com',
      's3.us-east-2.amazonaws.com',
    ]);
  });
});

describe('issue 12: redundancy in the deployed definition', () => {
  it('Redundancy maps over the shards, one redundancy Lambda each, with bounded concurrency and its Catch', () => {
    const [[, machine] = []] = ofType('AWS::StepFunctions::StateMachine');
    const definition = JSON.parse(flattenCfn(machine?.Properties.DefinitionString)) as {
      States: Record<string, Record<string, unknown>>;
    };
    const redundancy = definition.States.Redundancy as {
      Type: string;
      ItemsPath: string;
      MaxConcurrency: number;
      ItemProcessor: {
        States: Record<string, { Parameters: { FunctionName: string; 'Payload.$': string } }>;
      };
      Catch: unknown[];
    };
    expect(redundancy.Type).toBe('Map');
    expect(redundancy.ItemsPath).toBe('$.discover.shards');
    expect(redundancy.MaxConcurrency).toBeGreaterThan(1);
    expect(redundancy.MaxConcurrency).toBeLessThanOrEqual(10);
    const copy = redundancy.ItemProcessor.States.CopyShard;
    expect(copy?.Parameters.FunctionName).toBe(`\${${FUNCTION_ARN_PLACEHOLDERS.redundancy}}`);
    const substitutions = machine?.Properties.DefinitionSubstitutions as Record<string, unknown>;
    expect(flattenCfn(substitutions.RedundancyFunctionArn)).toMatch(/^<RedundancyFunction.*\.Arn>$/);
    expect(copy?.Parameters['Payload.$']).toBe('$');
    expect(redundancy.Catch).toEqual([
      expect.objectContaining({ ResultPath: '$.redundancyError', Next: 'Report' }),
    ]);
  });
});
