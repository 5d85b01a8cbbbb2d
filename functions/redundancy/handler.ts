import { openCopyTarget } from '../../lib/adapters/stores.ts';
import type { CopyTarget } from '../../lib/core/ports.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';
import { type RedundancyOptions, redundancyStage } from '../../lib/core/stages/redundancy.ts';
import { lambdaContext } from '../shared/environment.ts';
import { logged } from '../shared/logging.ts';

export function makeRedundancyHandler(
  context: () => StageContext,
  openTarget: (url: string) => CopyTarget,
  options: RedundancyOptions = {},
) {
  // One shard per invocation (the Redundancy Map's items); the whole run when no shard is given.
  return async (event: { runId: string; shard?: number }) =>
    redundancyStage(context(), event.runId, openTarget, {
      ...options,
      ...(event.shard === undefined ? {} : { shard: event.shard }),
    });
}

export const handler = logged(
  'redundancy',
  makeRedundancyHandler(
    () => lambdaContext(),
    (url) => openCopyTarget(url),
  ),
  ({ checked, copied, missing }) => ({ checked, copied, missing }),
);
