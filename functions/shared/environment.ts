import { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import { checksumReaderOf } from '../../lib/adapters/s3-checksums.ts';
import { openProtection } from '../../lib/adapters/s3-immutability.ts';
import { openCopyTarget, openStore } from '../../lib/adapters/stores.ts';
import { FARGATE_EPHEMERAL_GIB } from '../../lib/core/restore/scratch.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';

/** A required environment variable; a missing one fails the cold start, naming it. */
export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (value === undefined || value.trim() === '') {
    throw new Error(`environment variable ${name} is not set: the function's deployment is incomplete`);
  }
  return value;
}

let cached: StageContext | undefined;

/** The stage context a Lambda builds once from its validated environment and reuses warm. */
export function lambdaContext(env: NodeJS.ProcessEnv = process.env): StageContext {
  if (cached) return cached;
  const tableName = requireEnv('LEDGER_TABLE', env);
  const runStoreUrl = requireEnv('RUN_STORE', env);
  if (!runStoreUrl.startsWith('s3://')) throw new Error(`RUN_STORE must be an s3:// URL, got ${runStoreUrl}`);
  cached = {
    ledger: new DynamoDbLedger({ tableName }),
    runStore: openCopyTarget(runStoreUrl),
    openSource: (url) => openStore(url),
    openProtection: (url) => openProtection(url),
    checksumsOf: checksumReaderOf,
    now: () => new Date(),
    // Restores run in the Fargate sandbox of this region: what it cannot take gets a finding, not a task.
    sandbox: {
      maxScratchGiB: FARGATE_EPHEMERAL_GIB.max,
      ...(env.AWS_REGION ? { region: env.AWS_REGION } : {}),
    },
  };
  return cached;
}

/** Default sources of a scheduled or rule-triggered run: a JSON array of s3:// URLs. */
export function defaultSources(env: NodeJS.ProcessEnv = process.env): string[] {
  const raw = env.SOURCES;
  if (!raw) return [];
  const parsed = JSON.parse(raw) as unknown;
  if (!Array.isArray(parsed) || parsed.some((s) => typeof s !== 'string')) {
    throw new Error('environment variable SOURCES must be a JSON array of s3:// URLs');
  }
  return parsed as string[];
}
