import { type Config, policyFor } from '../core/config.ts';
import { type SeriesTrend, trendOf } from '../core/history.ts';
import type { Ledger } from '../core/ledger.ts';
import type { RunReport } from '../core/model.ts';
import type { HtmlReportInput } from './page.ts';

/** Points per chart: about half a year of weekly runs. */
const TREND_POINTS = 26;

/** The page's input: the report, each of its series' trend from the ledger (one Query a series), its policy. */
export async function htmlReportInput(
  report: RunReport,
  ledger: Pick<Ledger, 'seriesHistory'>,
  config: Config,
): Promise<HtmlReportInput> {
  const series = [...new Set(report.backups.map((b) => b.series))];
  const trends: SeriesTrend[] = await Promise.all(
    series.map(async (name) =>
      trendOf(
        { series: name, status: null, stages: {} },
        await ledger.seriesHistory(name, TREND_POINTS * 4),
        TREND_POINTS,
      ),
    ),
  );
  return {
    report,
    trends,
    objectives: (name) => {
      const policy = policyFor(config, name);
      return { rpoMinutes: policy.rpoMinutes, rtoMinutes: policy.rtoMinutes };
    },
  };
}
