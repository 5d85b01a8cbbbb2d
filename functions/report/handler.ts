import { SnsNotifier } from '../../lib/adapters/sns-notifier.ts';
import { policyFor } from '../../lib/core/config.ts';
import { runMetrics } from '../../lib/core/metrics.ts';
import type { RunReport } from '../../lib/core/model.ts';
import type { Notifier } from '../../lib/core/ports.ts';
import { runKeys, writeText } from '../../lib/core/run-store.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';
import { describeError } from '../../lib/core/stages/record-failure.ts';
import { recordRedundancyFailure } from '../../lib/core/stages/redundancy.ts';
import { type FailedStep, reportStage } from '../../lib/core/stages/report.ts';
import { loadRun } from '../../lib/core/stages/run.ts';
import { htmlReportInput } from '../../lib/html-report/input.ts';
import { failureNotice } from '../../lib/html-report/notice.ts';
import { renderHtmlReport } from '../../lib/html-report/page.ts';
import { caughtErrorsOf, STATE_NAMES } from '../../lib/pipeline/definition.ts';
import { lambdaContext } from '../shared/environment.ts';
import { logged } from '../shared/logging.ts';

export interface ReportEvent {
  runId: string;
  /** The execution's state: the errors its Catches kept there become run-level CHECK_FAILED findings. */
  state?: unknown;
}

export function makeReportHandler(
  context: () => StageContext,
  emit: (line: string) => void,
  namespace = process.env.METRICS_NAMESPACE,
  notifier?: () => Notifier | undefined,
) {
  return async (
    event: ReportEvent,
  ): Promise<{ status: RunReport['status']; reportUrl: string; htmlReportUrl: string }> => {
    const ctx = context();
    const failed: FailedStep[] = caughtErrorsOf(event.state);
    const redundancy = failed.find((c) => c.state === STATE_NAMES.redundancy);
    if (redundancy) {
      // The step may have died before it could record its failure (timeout, crash): recorded here.
      try {
        await recordRedundancyFailure(ctx, event.runId, describeError(redundancy.error));
      } catch (error) {
        failed.push({
          state: STATE_NAMES.report,
          consequence: 'the backups that needed copies could not be marked REDUNDANCY_MISSING',
          error: { Error: (error as Error).name, Cause: (error as Error).message },
        });
      }
    }
    const { status, reportKey, report } = await reportStage(ctx, event.runId, failed);
    const { config } = await loadRun(ctx, event.runId);
    const rtoMinutesFor = (series: string) => policyFor(config, series).rtoMinutes;
    for (const doc of runMetrics(report, namespace, rtoMinutesFor)) emit(JSON.stringify(doc));
    // The page a person opens, beside the JSON it is rendered from.
    const htmlKey = runKeys.reportHtml(event.runId);
    await writeText(
      ctx.runStore,
      htmlKey,
      renderHtmlReport(await htmlReportInput(report, ctx.ledger, config)),
    );
    const base = ctx.runStore.url.replace(/\/+$/, '');
    const htmlReportUrl = `${base}/${htmlKey}`;
    const notify = notifier?.();
    if (notify) {
      const notice = await failureNotice(report, ctx.ledger, [htmlReportUrl, ...consoleLink(htmlReportUrl)]);
      if (notice) await notify.notify(notice.subject, notice.body);
    }
    return { status, reportUrl: `${base}/${reportKey}`, htmlReportUrl };
  };
}

/** The S3 console page of an s3:// object, where a person can open or download it. */
function consoleLink(url: string): string[] {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  return match
    ? [
        `https://console.aws.amazon.com/s3/object/${match[1]}?prefix=${encodeURIComponent(match[2] as string)}`,
      ]
    : [];
}

let sns: SnsNotifier | undefined;

// EMF documents printed to stdout become CloudWatch metrics.
export const handler = logged(
  'report',
  makeReportHandler(
    () => lambdaContext(),
    (line) => process.stdout.write(`${line}\n`),
    process.env.METRICS_NAMESPACE,
    () => {
      const topic = process.env.ALARM_TOPIC_ARN;
      if (!topic) return undefined;
      sns ??= new SnsNotifier(topic);
      return sns;
    },
  ),
  ({ status }) => ({ status }),
);
