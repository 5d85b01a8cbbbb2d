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
