import { selectRestoresStage } from '../../lib/core/select.ts';
import type { StageContext } from '../../lib/core/stages.ts';
import { lambdaContext } from '../shared/environment.ts';
import { logged } from '../shared/logging.ts';

export function makeSelectRestoresHandler(context: () => StageContext) {
  return async (event: { runId: string }) => selectRestoresStage(context(), event.runId);
}

export const handler = logged(
  'select-restores',
  makeSelectRestoresHandler(() => lambdaContext()),
);
