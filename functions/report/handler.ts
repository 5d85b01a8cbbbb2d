import { runMetrics } from '../../lib/core/metrics.ts';
import type { RunReport } from '../../lib/core/model.ts';
import { reportStage, type StageContext } from '../../lib/core/stages.ts';
import { lambdaContext } from '../shared/environment.ts';

export function makeReportHandler(
  context: () => StageContext,
  emit: (line: string) => void,
  namespace = process.env.METRICS_NAMESPACE,
) {
  return async (event: { runId: string }): Promise<{ status: RunReport['status']; reportUrl: string }> => {
    const ctx = context();
    const { status, reportKey, report } = await reportStage(ctx, event.runId);
    for (const doc of runMetrics(report, namespace)) emit(JSON.stringify(doc));
    return { status, reportUrl: `${ctx.runStore.url.replace(/\/+$/, '')}/${reportKey}` };
  };
}

// EMF documents printed to stdout become CloudWatch metrics.
export const handler = makeReportHandler(
  () => lambdaContext(),
  (line) => process.stdout.write(`${line}\n`),
);
