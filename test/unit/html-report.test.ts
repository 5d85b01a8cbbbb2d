import { describe, expect, it } from 'vitest';
import { finding } from '../../lib/core/findings.ts';
import type { BackupReport, RunReport } from '../../lib/core/model.ts';
import { renderHtmlReport, summaryLine } from '../../lib/html-report/page.ts';

function backup(
  name: string,
  series: string,
  status: BackupReport['status'],
  extra: Partial<BackupReport> = {},
) {
  return {
    id: `/backups/${name}`,
    series,
    kind: 'archive',
    location: `/backups/${name}`,
    objects: 1,
    bytes: 2048,
    createdAt: '2025-06-25T11:46:22.000Z',
    status,
    integrity: { status, score: status === 'FAIL' ? 0.6 : 1 },
    restore: { status: 'SKIPPED', durationMs: 0, filesRestored: 0, bytesRestored: 0 },
    findings: [],
    ...extra,
  } as BackupReport;
}

function report(backups: BackupReport[], findings: RunReport['findings'] = []): RunReport {
  const count = (s: string) => backups.filter((b) => b.status === s).length;
  return {
    schemaVersion: 1,
    runId: 'run-1',
    command: 'integrity',
    trigger: 'cli',
    sources: ['/backups'],
    startedAt: '2025-06-26T00:00:00.000Z',
    finishedAt: '2025-06-26T00:01:00.000Z',
    status: backups.some((b) => b.status === 'FAIL') || findings.length ? 'FAIL' : 'PASS',
    counts: {
      backups: backups.length,
      pass: count('PASS'),
      warn: count('WARN'),
      fail: count('FAIL'),
      skipped: count('SKIPPED'),
      series: new Set(backups.map((b) => b.series)).size,
      seriesRows: new Set(findings.map((f) => f.series)).size,
    },
    backups,
    findings,
  };
}

describe('HTML report', () => {
  it('says in one sentence how many failed and what to do first', () => {
    const damaged = backup('db-20250625.tar.gz', 'db', 'FAIL', {
      findings: [{ code: 'EMPTY_BACKUP', severity: 'error', message: 'the archive holds no file content' }],
    });
    const line = summaryLine(report([damaged, backup('web-20250625.tar.gz', 'web', 'PASS')]));
    expect(line).toMatch(
      /^2 backups checked; 1 failed\. Start with db-20250625\.tar\.gz \(EMPTY_BACKUP\): Fix the backup job/,
    );
    expect(summaryLine(report([backup('web.tar', 'web', 'PASS')]))).toBe('1 backup checked; none failed.');
  });

  it('escapes every name that comes from a backup: a file named <script> is text', () => {
    const hostile = '<script>alert(1)</script>"onload="x.tar';
    const page = renderHtmlReport({
      report: report(
        [
          backup(hostile, `<img src=x onerror=alert(1)>`, 'FAIL', {
            findings: [
              {
                code: 'UNSAFE_PATH',
                severity: 'error',
                object: '../<b>etc</b>/passwd',
                message: `entry "<iframe src=//evil>" leaves the root`,
              },
            ],
          }),
        ],
        [finding('RPO_EXCEEDED', 'newest backup is 9 days old', { series: '<svg onload=alert(1)>' })],
      ),
    });
    expect(page).not.toMatch(/<script>|<img |<iframe|<svg onload|<b>etc/);
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;onload=&quot;x.tar');
    expect(page).toContain('&lt;iframe src=//evil&gt;');
    // The page asks the browser for nothing: no script, no external reference.
    expect(page).not.toMatch(/<script|<link|src="http|href="http|@import|url\(/i);
    expect(page).toContain("default-src 'none'");
  });

  it('shows each backup with a mark and a word per check, series findings as rows, and a chart per series', () => {
    const page = renderHtmlReport({
      report: report(
        [
          backup('db-1.tar.gz', 'db', 'FAIL', {
            findings: [{ code: 'CHECKSUM_MISMATCH', severity: 'error', message: 'differs from its sidecar' }],
          }),
          backup('web-1.tar.gz', 'web', 'PASS'),
        ],
        [finding('RPO_EXCEEDED', 'newest backup is 9 days old', { series: 'web' })],
      ),
      objectives: () => ({ rpoMinutes: 1440, rtoMinutes: 30 }),
    });
    expect(page).toContain('✗ FAIL');
    expect(page).toContain('✓ ok');
    expect(page).toContain('<span class="badge s--">–</span>');
    expect(page.match(/<section class="series">/g)).toHaveLength(2);
    expect(page.match(/<svg role="img"/g)?.length).toBeGreaterThanOrEqual(8);
    expect(page).toContain('RPO 24 h');
    expect(page).toMatch(/<tr class="row-series"><th scope="row">web<\/th>/);
    expect(page).toContain('What to do:');
  });
});
