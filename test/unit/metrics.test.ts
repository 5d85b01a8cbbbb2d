import { describe, expect, it } from 'vitest';
import { runMetrics } from '../../lib/core/metrics.ts';
import type { RunReport } from '../../lib/core/model.ts';

const report: RunReport = {
  schemaVersion: 1,
  runId: 'r',
  command: 'comprehensive',
  trigger: 'schedule',
  sources: ['s3://b/p'],
  startedAt: '2025-06-26T00:00:00.000Z',
  finishedAt: '2025-06-26T02:00:00.000Z',
  status: 'FAIL',
  counts: { backups: 2, pass: 1, warn: 0, fail: 1, skipped: 0, series: 1, seriesRows: 0 },
  backups: [
    {
      id: 's3://b/p/db-1.tar',
      series: 'db',
      kind: 'archive',
      location: 's3://b/p/db-1.tar',
      objects: 1,
      bytes: 1,
      createdAt: '2025-06-25T00:00:00.000Z',
      status: 'PASS',
      integrity: { status: 'PASS', score: 1 },
      restore: { status: 'SKIPPED', durationMs: 0, filesRestored: 0, bytesRestored: 0 },
      findings: [],
    },
    {
      id: 's3://b/p/db-2.tar',
      series: 'db',
      kind: 'archive',
      location: 's3://b/p/db-2.tar',
      objects: 1,
      bytes: 1,
      createdAt: '2025-06-26T00:00:00.000Z',
      status: 'FAIL',
      integrity: { status: 'FAIL', score: 0.6 },
      restore: { status: 'FAIL', durationMs: 4500, filesRestored: 0, bytesRestored: 0 },
      findings: [],
    },
  ],
  findings: [{ code: 'RPO_EXCEEDED', severity: 'error', series: 'db', message: 'old' }],
};

describe('EMF metrics', () => {
  it('emits the totals the alarms watch without dimensions, and the newest backup of each series', () => {
    const [totals, series, ...rest] = runMetrics(report, 'NS', (s) => (s === 'db' ? 30 : 0));
    expect(rest).toEqual([]);
    expect(totals?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([[]]);
    expect(totals).toMatchObject({
      BackupsValidated: 2,
      BackupsPassed: report.counts.pass,
      BackupsFailed: 1,
      BackupsNotChecked: report.counts.skipped,
      RpoBreaches: 1,
    });
    expect(series?._aws.CloudWatchMetrics[0]).toMatchObject({
      Namespace: 'NS',
      Dimensions: [[], ['Series']],
    });
    expect(series).toMatchObject({
      Series: 'db',
      IntegrityScore: 0.6,
      RestoreSeconds: 4.5,
      RtoSeconds: 1800,
      BackupAgeHours: 2,
    });
    expect(series?._aws.Timestamp).toBe(Date.parse(report.finishedAt));
  });
});

describe('issue 15 / issue 14: coverage and cost metrics', () => {
  it('emit the cost estimate and the series behind with the totals, and each series coverage share', () => {
    const withCoverage: RunReport = {
      ...report,
      cost: {
        region: 'us-east-1',
        usage: {
          s3GetRequests: 10,
          s3ListRequests: 1,
          s3HeadRequests: 0,
          s3BytesRead: 100,
          lambdaGbSeconds: 0,
          lambdaRequests: 0,
          fargateVcpuSeconds: 0,
          fargateGbSeconds: 0,
          fargateStorageGbSeconds: 0,
          stepFunctionsTransitions: 0,
        },
        estimate: { s3: 0.25, lambda: 0, fargate: 0, stepFunctions: 0, total: 0.25 },
        estimated: [],
      },
      coverage: [
        {
          series: 'db',
          withinDays: 30,
          budgetOwner: 'defaults',
          budget: { bytes: 10, requests: 0 },
          backups: 2,
          bytes: 2,
          bytesVerifiedInWindow: 1,
          share: 0.5,
          readThisRun: { backups: 1, bytes: 1, requests: 1 },
          deferred: 1,
          oldestUnverified: { backup: 's3://b/p/db-1.tar', since: '2025-05-01T00:00:00.000Z', ageDays: 56 },
          neededPerRun: { bytes: 1, requests: 1 },
          reachable: true,
          forecastMetAt: '2025-07-03T00:00:00.000Z',
          behind: true,
        },
      ],
    };
    const docs = runMetrics(withCoverage, 'NS');
    expect(docs[0]).toMatchObject({ CostEstimateUsd: 0.25, CoverageBehind: 1 });
    const coverage = docs.find((d) => 'CoverageShare' in d);
    expect(coverage).toMatchObject({ Series: 'db', CoverageShare: 0.5, OldestUnverifiedDays: 56 });
    expect(coverage?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([[], ['Series']]);
    expect(runMetrics(report, 'NS')[0]).not.toHaveProperty('CostEstimateUsd');
  });
});
