import { describe, expect, it } from 'vitest';
import { renderFindings, renderMatrix, renderSummary } from '../../lib/cli/render.ts';
import { rpoChecks, rpoFindings, SeriesTracker } from '../../lib/core/compliance.ts';
import { parseConfig } from '../../lib/core/config.ts';
import { finding } from '../../lib/core/findings.ts';
import type { Backup, IntegrityResult } from '../../lib/core/model.ts';
import { type BackupOutcome, buildReport } from '../../lib/core/report.ts';
import { humanTime } from '../../lib/core/units.ts';

function backup(id: string, series: string, createdAt: string): Backup {
  return {
    id,
    source: '/src',
    series,
    kind: 'archive',
    key: id,
    name: id,
    createdAt: new Date(createdAt),
    createdFrom: 'name',
    objects: 1,
    bytes: 10,
    members: [],
    manifestKeys: [],
  };
}

function integrity(
  backupId: string,
  status: IntegrityResult['status'],
  score: number,
  findings = [],
): IntegrityResult {
  return {
    backupId,
    status,
    score,
    findings,
    durationMs: 1,
    bytesRead: 10,
    objectSha256: {},
    files: 1,
    contentBytes: 10,
  };
}

const when = { startedAt: new Date('2025-06-26T00:00:00Z'), finishedAt: new Date('2025-06-26T00:01:00Z') };

describe('run report', () => {
  it('fails a backup on any error finding whatever its score', () => {
    const outcome: BackupOutcome = {
      backup: backup('a.tar', 'a', '2025-06-25T00:00:00Z'),
      integrity: integrity('a.tar', 'PASS', 1),
      findings: [finding('REDUNDANCY_MISSING', 'no copy', { backup: 'a.tar' })],
    };
    const report = buildReport({
      runId: 'r1',
      command: 'integrity',
      trigger: 'cli',
      sources: ['/src'],
      ...when,
      outcomes: [outcome],
      runFindings: [],
    });
    expect(report.backups[0]?.status).toBe('FAIL');
    expect(report.status).toBe('FAIL');
    expect(report.backups[0]?.findings[0]).toEqual({
      code: 'REDUNDANCY_MISSING',
      severity: 'error',
      message: 'no copy',
    });
  });

  it('takes the worst backup as the run status, and a run-level error fails the run', () => {
    const outcomes: BackupOutcome[] = [
      {
        backup: backup('a.tar', 'a', '2025-06-25T00:00:00Z'),
        integrity: integrity('a.tar', 'PASS', 1),
        findings: [],
      },
      {
        backup: backup('b.tar', 'b', '2025-06-25T00:00:00Z'),
        integrity: integrity('b.tar', 'WARN', 0.8),
        findings: [],
      },
    ];
    const base = {
      runId: 'r',
      command: 'integrity',
      trigger: 'cli' as const,
      sources: ['/src'],
      ...when,
      outcomes,
    };
    expect(buildReport({ ...base, runFindings: [] }).status).toBe('WARN');
    const stale = buildReport({ ...base, runFindings: [finding('RPO_EXCEEDED', 'old', { series: 'a' })] });
    expect(stale.status).toBe('FAIL');
    expect(stale.counts).toEqual({
      backups: 2,
      pass: 1,
      warn: 1,
      fail: 1,
      skipped: 0,
      series: 2,
      seriesRows: 1,
    });
    const matrix = renderMatrix(stale, when.finishedAt);
    expect(matrix.split('\n')[0]).toMatch(
      /^SERIES\s+BACKUP\s+KIND\s+SIZE\s+AGE\s+ACCESS\s+CHECKSUM\s+ARCHIVE\s+COMPLIANCE\s+SCORE\s+TIME\s+STATUS$/,
    );
    expect(renderFindings(stale)).toBe('ERROR RPO_EXCEEDED          series a: old');
  });
});

describe('issue 9: no false pass in the report', () => {
  const base = { runId: 'r', trigger: 'cli' as const, sources: ['/src'], ...when };

  it('issue 9.10: a folder backup takes in the worst status of the archives nested in it, and names them', () => {
    const folder: Backup = {
      ...backup('/src/nightly/', 'nightly', '2025-06-25T00:00:00Z'),
      kind: 'directory',
    };
    const nested: Backup = {
      ...backup('/src/nightly/memories.sql.gz', 'nightly/memories.sql', '2025-06-25T00:00:00Z'),
      parentId: folder.id,
    };
    const empty = [finding('EMPTY_BACKUP', 'zero bytes', { backup: nested.id })];
    const report = buildReport({
      ...base,
      command: 'integrity',
      outcomes: [
        { backup: folder, integrity: integrity(folder.id, 'PASS', 1), findings: [] },
        {
          backup: nested,
          integrity: { ...integrity(nested.id, 'FAIL', 0.8), findings: empty },
          findings: [],
        },
      ],
      runFindings: [],
    });
    const byId = Object.fromEntries(report.backups.map((b) => [b.id, b]));
    expect(byId[folder.id]?.status).toBe('FAIL');
    expect(byId[folder.id]?.nested).toEqual([{ id: nested.id, status: 'FAIL' }]);
    expect(byId[nested.id]?.parentId).toBe(folder.id);
    expect(report.counts).toMatchObject({ pass: 0, fail: 2 });
    const folderRow = renderMatrix(report, when.finishedAt)
      .split('\n')
      .find((line) => line.startsWith('nightly '));
    expect(folderRow).toMatch(/\bFAIL memories\.sql\.gz\b.*\bFAIL$/);
  });

  it('issue 9.11: a backup no stage checked is SKIPPED, never counted as a pass, and counts add up to the verdict', () => {
    const checked: BackupOutcome = {
      backup: backup('a.tar', 'a', '2025-06-25T00:00:00Z'),
      integrity: integrity('a.tar', 'PASS', 1),
      findings: [],
    };
    const unchecked: BackupOutcome = { backup: backup('b.tar', 'b', '2025-06-25T00:00:00Z'), findings: [] };
    const report = buildReport({
      ...base,
      command: 'restore',
      outcomes: [checked, unchecked],
      runFindings: [finding('RPO_EXCEEDED', 'old', { series: 'c' })],
    });
    expect(report.backups.map((b) => [b.id, b.status])).toEqual([
      ['a.tar', 'PASS'],
      ['b.tar', 'SKIPPED'],
    ]);
    expect(report.status).toBe('FAIL');
    expect(report.counts).toEqual({
      backups: 2,
      pass: 1,
      warn: 0,
      fail: 1,
      skipped: 1,
      series: 2,
      seriesRows: 1,
    });
    const c = report.counts;
    expect(c.pass + c.warn + c.fail + c.skipped).toBe(c.backups + c.seriesRows);
    const lines = renderMatrix(report, when.finishedAt).split('\n');
    expect(lines.find((l) => l.startsWith('b '))).toMatch(
      /^b\s+b\.tar\s+archive\s+10 B\s+\d+ (?:min|h|d)(\s+-)+\s+SKIPPED$/,
    );
    expect(lines.find((l) => l.startsWith('c '))).toMatch(
      /^c\s+\(series\)\s+series\b.*\bFAIL\s+-\s+-\s+FAIL$/,
    );
    expect(renderSummary(report)).toBe(
      'FAIL: 2 backup(s) in 2 series and 1 series-level row(s): 1 pass, 0 warn, 1 fail, 1 skipped (not checked); run r',
    );
  });

  it('issue 9.11: a warning found without a check still shows: the backup is WARN, not SKIPPED', () => {
    const report = buildReport({
      ...base,
      command: 'discover',
      outcomes: [
        {
          backup: backup('a.tar', 'a', '2025-06-25T00:00:00Z'),
          findings: [finding('ARCHIVED_STORAGE', 'glacier', { backup: 'a.tar' })],
        },
      ],
      runFindings: [],
    });
    expect(report.backups[0]?.status).toBe('WARN');
    expect(report.counts).toMatchObject({ warn: 1, skipped: 0 });
  });
});

describe('RPO', () => {
  it('flags only series whose newest backup is older than their RPO', () => {
    const config = parseConfig({ defaults: { rpoMinutes: 60 }, series: { slow: { rpoMinutes: 0 } } });
    const tracker = new SeriesTracker();
    tracker.add(backup('fresh-1', 'fresh', '2025-06-26T00:30:00Z'));
    tracker.add(backup('stale-1', 'stale', '2025-06-25T00:00:00Z'));
    tracker.add(backup('stale-2', 'stale', '2025-06-25T12:00:00Z'));
    tracker.add(backup('slow-1', 'slow', '2020-01-01T00:00:00Z'));
    const findings = rpoFindings(rpoChecks(tracker, config, new Date('2025-06-26T01:00:00Z')));
    expect(findings.map((f) => [f.code, f.series])).toEqual([['RPO_EXCEEDED', 'stale']]);
    expect(findings[0]?.message).toContain('stale-2');
  });
});

describe('durations in the matrix', () => {
  it('keeps short restores readable and long ones in minutes', () => {
    expect([15, 1500, 754_000].map(humanTime)).toEqual(['15 ms', '1.5 s', '12 min 34 s']);
  });
});

describe('issue 9.12: one finding per fact per backup', () => {
  it('issue 9.12: a fact both the integrity pass and the restore state is reported once; different facts all stay', () => {
    const at = { backup: 'v.tar' };
    const mismatch = finding('CHECKSUM_MISMATCH', 'v.tar: SHA-256 is a but the sidecar says b', {
      ...at,
      object: 'v.tar',
    });
    const emptyByIntegrity = finding('EMPTY_BACKUP', 'v.tar holds no file content', {
      ...at,
      object: 'v.tar',
    });
    const emptyByRestore = finding('EMPTY_BACKUP', 'the restore produced no file content', at);
    const otherObject = finding('CHECKSUM_MISMATCH', 'w: SHA-256 differs', { ...at, object: 'w' });
    const report = buildReport({
      runId: 'r',
      command: 'comprehensive',
      trigger: 'cli',
      sources: ['/src'],
      ...when,
      runFindings: [],
      outcomes: [
        {
          backup: backup('v.tar', 'v', '2025-06-25T00:00:00Z'),
          integrity: {
            ...integrity('v.tar', 'FAIL', 0.5),
            findings: [mismatch, emptyByIntegrity, { ...mismatch, object: 'x', message: 'x differs' }],
          },
          restore: {
            backupId: 'v.tar',
            status: 'FAIL',
            durationMs: 1,
            filesRestored: 0,
            bytesRestored: 0,
            phases: { downloadMs: 0, extractMs: 0, verifyMs: 0, probesMs: 0, cleanupMs: 0 },
            findings: [emptyByRestore, { ...mismatch }, otherObject],
          },
          findings: [],
        },
      ],
    });
    const [entry] = report.backups;
    expect(entry?.status).toBe('FAIL');
    expect(entry?.findings.map((f) => [f.code, f.object, f.message])).toEqual([
      ['CHECKSUM_MISMATCH', 'v.tar', mismatch.message],
      ['EMPTY_BACKUP', 'v.tar', emptyByIntegrity.message],
      ['CHECKSUM_MISMATCH', 'x', 'x differs'],
      ['CHECKSUM_MISMATCH', 'w', otherObject.message],
    ]);
  });
});
