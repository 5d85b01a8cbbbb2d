import type { Logger } from '../../lib/adapters/json-log.ts';
import { immutabilityStage } from '../../lib/core/immutability.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';
import { integrityStage, LAMBDA_INTEGRITY_MAX_BYTES } from '../../lib/core/stages/integrity.ts';
import type { ShardRef } from '../../lib/core/stages/run.ts';
import { lambdaContext } from '../shared/environment.ts';
import { logged } from '../shared/logging.ts';

/**
 * `maxBytes`: backups above it are left to the sandbox (a Lambda has 15 minutes); none locally.
 * The shard's immutability check (issue 15) goes first: a few small requests per object and no
 * read, so a retry after it failed costs little, and a failure for good reaches the Catch.
 */
export function makeIntegrityHandler(context: () => StageContext, maxBytes?: number, concurrency?: number) {
  return async (event: ShardRef, log?: Logger) => {
    const immutability = await immutabilityStage(context(), event);
    const { runId, shard, results } = await integrityStage(context(), event, {
      ...(maxBytes === undefined ? {} : { maxBytes }),
      ...(concurrency === undefined ? {} : { concurrency }),
    });
    for (const r of results) log?.info(`integrity ${r.status}`, { backup: r.backupId, status: r.status });
    const count = (status: string) => results.filter((r) => r.status === status).length;
    return {
      runId,
      shard,
      checked: results.length,
      pass: count('PASS'),
      warn: count('WARN'),
      fail: count('FAIL'),
      toSandbox: count('SKIPPED'),
      immutability,
    };
  };
}

const configuredMax = Number(process.env.INTEGRITY_MAX_BYTES);
export const handler = logged(
  'integrity',
  makeIntegrityHandler(() => lambdaContext(), configuredMax > 0 ? configuredMax : LAMBDA_INTEGRITY_MAX_BYTES),
  ({ checked, pass, warn, fail, toSandbox }) => ({ checked, pass, warn, fail, toSandbox }),
);
