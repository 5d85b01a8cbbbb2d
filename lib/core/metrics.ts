import type { RunReport } from './model.ts';

export const METRICS_NAMESPACE = 'BackupValidator';

interface EmfDocument {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: Array<{
      Namespace: string;
      Dimensions: string[][];
      Metrics: Array<{ Name: string; Unit: string }>;
    }>;
  };
  [key: string]: unknown;
}

function emf(
  namespace: string,
  at: number,
  dimensions: Record<string, string>,
  dimensionSets: string[][],
  metrics: Record<string, { value: number; unit: string }>,
): EmfDocument {
  const doc: EmfDocument = {
    _aws: {
      Timestamp: at,
      CloudWatchMetrics: [
        {
          Namespace: namespace,
          Dimensions: dimensionSets,
          Metrics: Object.entries(metrics).map(([Name, m]) => ({ Name, Unit: m.unit })),
        },
      ],
    },
    ...dimensions,
  };
  for (const [name, m] of Object.entries(metrics)) doc[name] = m.value;
  return doc;
}

/**
 * CloudWatch Embedded Metric Format documents for a run: totals with no dimension (what the
 * alarms watch), and the newest backup's score, restore time and age of each series.
 */
export function runMetrics(
  report: RunReport,
  namespace = METRICS_NAMESPACE,
  /** The series' RTO in minutes (0: none), graphed beside its restore time. */
  rtoMinutesFor: (series: string) => number = () => 0,
): EmfDocument[] {
  const at = Date.parse(report.finishedAt);
  const docs: EmfDocument[] = [
    emf(namespace, at, {}, [[]], {
      BackupsValidated: { value: report.counts.backups, unit: 'Count' },
      BackupsPassed: { value: report.counts.pass, unit: 'Count' },
      BackupsFailed: { value: report.counts.fail, unit: 'Count' },
      BackupsWarned: { value: report.counts.warn, unit: 'Count' },
      BackupsNotChecked: { value: report.counts.skipped, unit: 'Count' },
      RpoBreaches: {
        value: report.findings.filter((f) => f.code === 'RPO_EXCEEDED').length,
        unit: 'Count',
      },
      ...(report.cost ? { CostEstimateUsd: { value: report.cost.estimate.total, unit: 'None' } } : {}),
      ...(report.coverage
        ? { CoverageBehind: { value: report.coverage.filter((c) => c.behind).length, unit: 'Count' } }
        : {}),
    }),
  ];
  const newestBySeries = new Map<string, RunReport['backups'][number]>();
  for (const b of report.backups) {
    const seen = newestBySeries.get(b.series);
    if (!seen || b.createdAt > seen.createdAt) newestBySeries.set(b.series, b);
  }
  for (const [series, b] of newestBySeries) {
    const metrics: Record<string, { value: number; unit: string }> = {
      BackupAgeHours: { value: (at - Date.parse(b.createdAt)) / 3_600_000, unit: 'None' },
    };
    if (b.integrity.score !== null) metrics.IntegrityScore = { value: b.integrity.score, unit: 'None' };
    if (b.restore.status !== 'SKIPPED') {
      metrics.RestoreSeconds = { value: b.restore.durationMs / 1000, unit: 'Seconds' };
      const rto = rtoMinutesFor(series);
      if (rto > 0) metrics.RtoSeconds = { value: rto * 60, unit: 'Seconds' };
    }
    // Both without a dimension (the dashboard's and alarms' view) and per series.
    docs.push(emf(namespace, at, { Series: series }, [[], ['Series']], metrics));
  }
  // Coverage per series, and without a dimension (the dashboard graphs the lowest share).
  for (const c of report.coverage ?? []) {
    docs.push(
      emf(namespace, at, { Series: c.series }, [[], ['Series']], {
        CoverageShare: { value: c.share, unit: 'None' },
        ...(c.oldestUnverified
          ? { OldestUnverifiedDays: { value: c.oldestUnverified.ageDays, unit: 'None' } }
          : {}),
      }),
    );
  }
  return docs;
}
