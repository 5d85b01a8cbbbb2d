import { deserializeBackup } from '../../lib/core/run-store.ts';
import { loadRestoreJob } from '../../lib/core/select.ts';
import { type FailureInput, recordFailureStage, type StageContext } from '../../lib/core/stages.ts';
import { lambdaContext } from '../shared/environment.ts';
import { logged } from '../shared/logging.ts';

export function makeRecordFailureHandler(context: () => StageContext) {
  return async (event: FailureInput) => {
    const ctx = context();
    return recordFailureStage(ctx, event, async (runId, restore) =>
      deserializeBackup((await loadRestoreJob(ctx, runId, restore)).backup),
    );
  };
}

export const handler = logged(
  'record-failure',
  makeRecordFailureHandler(() => lambdaContext()),
);
