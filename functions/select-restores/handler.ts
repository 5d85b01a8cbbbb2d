import type { StageContext } from '../../lib/core/stages/context.ts';
import { selectRestoresStage } from '../../lib/core/stages/select-restores.ts';
import { lambdaContext } from '../shared/environment.ts';
import { logged } from '../shared/logging.ts';

export function makeSelectRestoresHandler(context: () => StageContext) {
  return async (event: { runId: string }) => selectRestoresStage(context(), event.runId);
}

export const handler = logged(
  'select-restores',
  makeSelectRestoresHandler(() => lambdaContext()),
);
