import { integrityStage, type ShardRef, type StageContext } from '../../lib/core/stages.ts';
import { lambdaContext } from '../shared/environment.ts';

export function makeIntegrityHandler(context: () => StageContext) {
  return async (event: ShardRef) => {
    const { runId, shard, results } = await integrityStage(context(), event);
    const count = (status: string) => results.filter((r) => r.status === status).length;
    return {
      runId,
      shard,
      checked: results.length,
      pass: count('PASS'),
      warn: count('WARN'),
      fail: count('FAIL'),
    };
  };
}

export const handler = makeIntegrityHandler(() => lambdaContext());
