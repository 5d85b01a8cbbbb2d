import { selectRestoresStage } from '../../lib/core/select.ts';
import type { StageContext } from '../../lib/core/stages.ts';
import { lambdaContext } from '../shared/environment.ts';

export function makeSelectRestoresHandler(context: () => StageContext) {
  return async (event: { runId: string }) => selectRestoresStage(context(), event.runId);
}

export const handler = makeSelectRestoresHandler(() => lambdaContext());
