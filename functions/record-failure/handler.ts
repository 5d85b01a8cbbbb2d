import type { StageContext } from '../../lib/core/stages/context.ts';
import { type FailureInput, recordFailureStage } from '../../lib/core/stages/record-failure.ts';
import { lambdaContext } from '../shared/environment.ts';
import { logged } from '../shared/logging.ts';

export function makeRecordFailureHandler(context: () => StageContext) {
  return async (event: FailureInput) => recordFailureStage(context(), event);
}

export const handler = logged(
  'record-failure',
  makeRecordFailureHandler(() => lambdaContext()),
);
