import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Config, parseConfig } from '../core/config.ts';
import { UsageError } from '../core/errors.ts';

/** A bucket and a key prefix, from `s3://bucket/prefix`. The prefix has no leading or trailing slash. */
export interface S3Location {
  bucket: string;
  prefix: string;
  url: string;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function parseS3Url(url: string, what: string): S3Location {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url.trim());
  if (!match) {
    throw new UsageError(`${what} "${url}" is not an s3://bucket/prefix URL`, what);
  }
  const bucket = match[1] as string;
  if (!BUCKET_NAME.test(bucket)) {
    throw new UsageError(`${what} "${url}": "${bucket}" is not a valid S3 bucket name`, what);
  }
  const prefix = (match[2] ?? '').replace(/^\/+|\/+$/g, '');
  return { bucket, prefix, url: prefix ? `s3://${bucket}/${prefix}` : `s3://${bucket}` };
}

/** The S3 targets among a configuration's redundancy targets (folders are the CLI's business). */
export function s3RedundancyTargets(config: Config): string[] {
  const all = [
    ...config.defaults.redundancy.targets,
    ...Object.values(config.series).flatMap((o) => o.redundancy?.targets ?? []),
  ];
  return [...new Set(all.filter((t) => t.startsWith('s3://')))];
}

export const DEFAULT_SCHEDULE = 'cron(0 3 ? * SUN *)';

/** What the app reads from `-c key=value` context (all strings on the command line). */
export interface ContextInputs {
  sources?: string;
  config?: string;
  configFile?: string;
  schedule?: string;
  alarmEmail?: string;
  redundancyTargets?: string;
  validateOnArrival?: string | boolean;
  s3PrefixListId?: string;
  dynamodbPrefixListId?: string;
  kmsKeyArns?: string;
}

function list(value: unknown): string[] {
  if (value === undefined || value === null || value === '') return [];
  if (Array.isArray(value)) return value.map(String);
  return String(value)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Reads the configuration document from `config` (inline JSON) or `configFile` (a path). */
export function configDocumentFrom(inputs: ContextInputs, cwd = process.cwd()): unknown {
  if (inputs.config !== undefined && inputs.configFile !== undefined) {
    throw new UsageError(
      'give the configuration either as -c config=<json> or -c configFile=<path>, not both',
    );
  }
  if (inputs.configFile !== undefined) {
    const path = resolve(cwd, inputs.configFile);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (cause) {
      throw new UsageError(
        `cannot read the configuration file ${path}: ${(cause as Error).message}`,
        'configFile',
        {
          cause,
        },
      );
    }
    try {
      return JSON.parse(text);
    } catch (cause) {
      throw new UsageError(
        `the configuration file ${path} is not valid JSON: ${(cause as Error).message}`,
        'configFile',
        {
          cause,
        },
      );
    }
  }
  if (inputs.config === undefined) return undefined;
  if (typeof inputs.config !== 'string') return inputs.config;
  try {
    return JSON.parse(inputs.config);
  } catch (cause) {
    throw new UsageError(`-c config=... is not valid JSON: ${(cause as Error).message}`, 'config', { cause });
  }
}

export interface ResolvedInputs {
  sources: S3Location[];
  /** Customer-managed keys of source and target buckets (SSE-KMS). */
  kmsKeyArns: string[];
  configDocument: Record<string, unknown>;
  config: Config;
  schedule: string;
  alarmEmail?: string;
  redundancyTargets: S3Location[];
  validateOnArrival: boolean;
  s3PrefixListId?: string;
  dynamodbPrefixListId?: string;
}

export interface StackInputs {
  sources?: string[];
  /** The docs/contract.md configuration document; validated at synth. */
  configDocument?: unknown;
  schedule?: string;
  alarmEmail?: string;
  /** Buckets the redundancy Lambda may write copies to, besides the configuration's s3:// targets. */
  redundancyTargets?: string[];
  validateOnArrival?: boolean;
  s3PrefixListId?: string;
  dynamodbPrefixListId?: string;
  /** Customer-managed KMS keys that encrypt source or redundancy buckets. */
  kmsKeyArns?: string[];
}

export function stackInputsFromContext(inputs: ContextInputs, cwd = process.cwd()): StackInputs {
  const validate = inputs.validateOnArrival;
  return {
    sources: list(inputs.sources),
    configDocument: configDocumentFrom(inputs, cwd),
    ...(inputs.schedule ? { schedule: inputs.schedule } : {}),
    ...(inputs.alarmEmail ? { alarmEmail: inputs.alarmEmail } : {}),
    redundancyTargets: list(inputs.redundancyTargets),
    validateOnArrival: validate === true || validate === 'true',
    ...(inputs.s3PrefixListId ? { s3PrefixListId: inputs.s3PrefixListId } : {}),
    ...(inputs.dynamodbPrefixListId ? { dynamodbPrefixListId: inputs.dynamodbPrefixListId } : {}),
    kmsKeyArns: list(inputs.kmsKeyArns),
  };
}

function prefixesOverlap(a: string, b: string): boolean {
  const within = (inner: string, outer: string) =>
    outer === '' || inner === outer || inner.startsWith(`${outer}/`);
  return within(a, b) || within(b, a);
}

/** Validates everything the stack is given; a bad input fails synth with a message naming it. */
export function resolveInputs(inputs: StackInputs): ResolvedInputs {
  const config = parseConfig(inputs.configDocument);
  const configDocument = (inputs.configDocument ?? {}) as Record<string, unknown>;
  const given = inputs.sources ?? [];
  if (given.length === 0) {
    throw new UsageError(
      'no backup sources: deploy with -c sources=s3://bucket/prefix[,s3://bucket2/prefix] (the buckets the pipeline may read; it never writes to them)',
      'sources',
    );
  }
  const sources = given.map((s) => parseS3Url(s, 'source'));
  const targetUrls = [...new Set([...(inputs.redundancyTargets ?? []), ...s3RedundancyTargets(config)])];
  const redundancyTargets = targetUrls.map((t) => parseS3Url(t, 'redundancy target'));
  for (const target of redundancyTargets) {
    const clash = sources.find((s) => s.bucket === target.bucket && prefixesOverlap(s.prefix, target.prefix));
    if (clash) {
      throw new UsageError(
        `redundancy target ${target.url} overlaps the source ${clash.url}: the pipeline never writes to a source; choose another bucket or a prefix outside the source`,
        'redundancyTargets',
      );
    }
  }
  const schedule = inputs.schedule ?? DEFAULT_SCHEDULE;
  if (!/^(cron|rate|at)\(.+\)$/.test(schedule)) {
    throw new UsageError(
      `schedule "${schedule}" is not an EventBridge Scheduler expression such as ${DEFAULT_SCHEDULE} or rate(1 day)`,
      'schedule',
    );
  }
  if (inputs.alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(inputs.alarmEmail)) {
    throw new UsageError(`alarmEmail "${inputs.alarmEmail}" is not an e-mail address`, 'alarmEmail');
  }
  if (inputs.s3PrefixListId && !inputs.dynamodbPrefixListId) {
    throw new UsageError(
      's3PrefixListId is given without dynamodbPrefixListId: the sandbox also writes to the ledger through the DynamoDB gateway endpoint; give both (aws ec2 describe-managed-prefix-lists) or neither',
      'dynamodbPrefixListId',
    );
  }
  const kmsKeyArns = inputs.kmsKeyArns ?? [];
  for (const arn of kmsKeyArns) {
    if (!/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/.+$/.test(arn)) {
      throw new UsageError(
        `kmsKeyArns: "${arn}" is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)`,
        'kmsKeyArns',
      );
    }
  }
  return {
    sources,
    kmsKeyArns,
    configDocument,
    config,
    schedule,
    ...(inputs.alarmEmail ? { alarmEmail: inputs.alarmEmail } : {}),
    redundancyTargets,
    validateOnArrival: inputs.validateOnArrival ?? false,
    ...(inputs.s3PrefixListId ? { s3PrefixListId: inputs.s3PrefixListId } : {}),
    ...(inputs.dynamodbPrefixListId ? { dynamodbPrefixListId: inputs.dynamodbPrefixListId } : {}),
  };
}
