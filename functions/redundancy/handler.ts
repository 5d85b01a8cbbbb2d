import { openCopyTarget } from '../../lib/adapters/stores.ts';
import type { CopyTarget } from '../../lib/core/ports.ts';
import { type RedundancyOptions, redundancyStage } from '../../lib/core/redundancy.ts';
import type { StageContext } from '../../lib/core/stages.ts';
import { lambdaContext } from '../shared/environment.ts';

export function makeRedundancyHandler(
  context: () => StageContext,
  openTarget: (url: string) => CopyTarget,
  options: RedundancyOptions = {},
) {
  return async (event: { runId: string }) => redundancyStage(context(), event.runId, openTarget, options);
}

export const handler = makeRedundancyHandler(
  () => lambdaContext(),
  (url) => openCopyTarget(url),
);
