import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../lib/core/errors.ts';
import { parseS3Url, resolveInputs, stackInputsFromContext } from '../../lib/stacks/inputs.ts';
import { synthStack } from '../support/cdk.ts';

const scratch = mkdtempSync(join(tmpdir(), 'bv-stack-inputs-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function usageErrorOf(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return error as UsageError;
  }
  throw new Error('expected a UsageError');
}

describe('stack inputs', () => {
  it('parses s3:// URLs, trimming slashes, and refuses anything else', () => {
    expect(parseS3Url('s3://bucket-a/backups/db/', 'source')).toEqual({
      bucket: 'bucket-a',
      prefix: 'backups/db',
      url: 's3://bucket-a/backups/db',
    });
    expect(parseS3Url('s3://bucket-a', 'source')).toMatchObject({ prefix: '', url: 's3://bucket-a' });
    expect(usageErrorOf(() => parseS3Url('/var/backups', 'source')).message).toMatch(/not an s3:\/\/bucket/);
    expect(usageErrorOf(() => parseS3Url('s3://Bad_Bucket/x', 'source')).message).toMatch(
      /not a valid S3 bucket/,
    );
  });

  it('fails synth on a bad configuration document, naming the key', () => {
    const error = usageErrorOf(() =>
      synthStack({ sources: ['s3://b-1/p'], configDocument: { defaults: { rpoMinuts: 5 } } }, { nag: false }),
    );
    expect(error.key).toBe('defaults.rpoMinuts');
    expect(error.message).toContain('unknown configuration key "defaults.rpoMinuts"');
  });

  it('refuses a redundancy target inside a source, but allows another prefix of the same bucket', () => {
    const error = usageErrorOf(() =>
      resolveInputs({ sources: ['s3://backups/db'], redundancyTargets: ['s3://backups/db/copies'] }),
    );
    expect(error.message).toMatch(/overlaps the source s3:\/\/backups\/db/);
    expect(() =>
      resolveInputs({ sources: ['s3://backups/db'], redundancyTargets: ['s3://backups'] }),
    ).toThrow(UsageError);
    expect(
      resolveInputs({ sources: ['s3://backups/db'], redundancyTargets: ['s3://backups/dbcopies'] })
        .redundancyTargets,
    ).toHaveLength(1);
  });

  it('refuses a schedule that is not a Scheduler expression and a malformed e-mail', () => {
    expect(
      usageErrorOf(() => resolveInputs({ sources: ['s3://a-bucket/x'], schedule: '0 3 * * 0' })).key,
    ).toBe('schedule');
    expect(
      usageErrorOf(() => resolveInputs({ sources: ['s3://a-bucket/x'], alarmEmail: 'ops-at-example' })).key,
    ).toBe('alarmEmail');
  });

  it('reads -c context: comma-separated lists, a config file, a boolean switch', () => {
    const file = join(scratch, 'config.json');
    writeFileSync(file, JSON.stringify({ defaults: { rtoMinutes: 5 } }));
    const inputs = stackInputsFromContext(
      {
        sources: 's3://a-bucket/x, s3://b-bucket',
        configFile: 'config.json',
        alarmEmail: 'ops@example.com',
        redundancyTargets: 's3://c-bucket/copies',
        validateOnArrival: 'true',
        schedule: 'rate(1 day)',
      },
      scratch,
    );
    expect(inputs).toEqual({
      sources: ['s3://a-bucket/x', 's3://b-bucket'],
      configDocument: { defaults: { rtoMinutes: 5 } },
      alarmEmail: 'ops@example.com',
      redundancyTargets: ['s3://c-bucket/copies'],
      validateOnArrival: true,
      schedule: 'rate(1 day)',
      kmsKeyArns: [],
    });
    expect(stackInputsFromContext({ config: '{"probes": []}' }).configDocument).toEqual({ probes: [] });
    expect(usageErrorOf(() => stackInputsFromContext({ config: '{oops' })).key).toBe('config');
    expect(
      usageErrorOf(() => stackInputsFromContext({ configFile: 'missing.json' }, scratch)).message,
    ).toMatch(/cannot read the configuration file .*missing\.json/);
  });

  it('issue 12: refuses to synthesize without sources, saying what to pass (no example bucket is granted or scheduled)', () => {
    const error = usageErrorOf(() => synthStack({}, { nag: false }));
    expect(error.key).toBe('sources');
    expect(error.message).toMatch(/-c sources=s3:\/\/bucket\/prefix/);
  });

  it('issue 12: refuses an S3 prefix list without the DynamoDB one, and a KMS key that is not an ARN', () => {
    expect(
      usageErrorOf(() => resolveInputs({ sources: ['s3://a-bucket/x'], s3PrefixListId: 'pl-63a5400a' })).key,
    ).toBe('dynamodbPrefixListId');
    expect(
      usageErrorOf(() => resolveInputs({ sources: ['s3://a-bucket/x'], kmsKeyArns: ['my-key'] })).key,
    ).toBe('kmsKeyArns');
    expect(
      stackInputsFromContext({
        kmsKeyArns: 'arn:aws:kms:eu-west-1:123456789012:key/abc, arn:aws:kms:eu-west-1:123456789012:key/def',
      }).kmsKeyArns,
    ).toEqual(['arn:aws:kms:eu-west-1:123456789012:key/abc', 'arn:aws:kms:eu-west-1:123456789012:key/def']);
  });

  it('uses the given schedule expression and no arrival rules unless asked', () => {
    const { template } = synthStack(
      { sources: ['s3://a-bucket/x'], schedule: 'rate(12 hours)' },
      { nag: false },
    );
    template.hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: 'rate(12 hours)' });
    const s3Rules = Object.values(template.findResources('AWS::Events::Rule')).filter(
      (r) => r.Properties.EventPattern.source?.[0] === 'aws.s3',
    );
    expect(s3Rules).toEqual([]);
    template.resourceCountIs('AWS::SNS::Subscription', 0);
  });
});

describe('bundling', () => {
  it('bundles every Lambda with the local esbuild as ESM, without the native SQLite module', () => {
    const outdir = join(scratch, 'cdk.out');
    const { app } = synthStack({ sources: ['s3://a-bucket/x'] }, { bundle: true, nag: false, outdir });
    app.synth();
    const bundles = readdirSync(outdir).filter(
      (entry) => entry.startsWith('asset.') && readdirSync(join(outdir, entry)).includes('index.mjs'),
    );
    expect(bundles).toHaveLength(8);
    for (const bundle of bundles) {
      const code = readFileSync(join(outdir, bundle, 'index.mjs'), 'utf8');
      expect(code).toMatch(/export\s*\{[^}]*handler/);
      expect(code).not.toMatch(/from ["']better-sqlite3["']|require\(["']better-sqlite3["']\)/);
      // issue 12: the SDK the tests ran is inside the bundle; nothing is left to the runtime's copy.
      expect(code).not.toMatch(/^import[^;]*from ["']@aws-sdk\//m);
    }
    const discover = bundles
      .map((bundle) => readFileSync(join(outdir, bundle, 'index.mjs'), 'utf8'))
      .find((code) => code.includes('discoverStage'));
    expect(discover).toMatch(/\bS3Client = class\b|\bclass S3Client\b/);
    // Eight esbuild bundles with the SDK inside: seconds alone, minutes on a loaded 2-core machine.
  }, 600_000);
});
