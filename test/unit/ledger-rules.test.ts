import { describe, expect, test } from 'vitest';
import type { StageResultRecord } from '../../lib/core/ledger.ts';
import {
  newestBackups,
  newestVerifications,
  rankedVerdict,
  seriesVerdicts,
  uniqueResults,
  verifies,
} from '../../lib/core/ledger-rules.ts';
import type { Backup } from '../../lib/core/model.ts';

function result(over: Partial<StageResultRecord>): StageResultRecord {
  return {
    runId: 'r1',
    backupId: 'b1',
    series: 's',
    stage: 'integrity',
    status: 'PASS',
    durationMs: 1,
    findings: [],
    at: '2026-01-01T00:00:00.000Z',
    ...over,
  };
}

function backup(id: string, series: string, createdAt: string, parentId?: string): Backup {
  return {
    id,
    source: 's3://bucket/',
    series,
    kind: 'archive',
    key: id,
    name: id,
    createdAt: new Date(createdAt),
    createdFrom: 'name',
    objects: 1,
    bytes: 1,
    members: [],
    manifestKeys: [],
    ...(parentId !== undefined ? { parentId } : {}),
  };
}

describe('issue 11: the ledger rules, without a server', () => {
  test('only a PASS or WARN from integrity or restore moves "last verified"', () => {
    expect(verifies({ stage: 'integrity', status: 'PASS' })).toBe(true);
    expect(verifies({ stage: 'restore', status: 'WARN' })).toBe(true);
    expect(verifies({ stage: 'integrity', status: 'FAIL' })).toBe(false);
    expect(verifies({ stage: 'restore', status: 'SKIPPED' })).toBe(false);
    expect(verifies({ stage: 'redundancy', status: 'PASS' })).toBe(false);
    expect(verifies({ stage: 'compliance', status: 'PASS' })).toBe(false);
    expect(verifies({ stage: 'immutability', status: 'PASS' })).toBe(false);
  });

  test('per backup, the newest verifying result is the one recorded; failures and other stages are ignored', () => {
    const picked = newestVerifications([
      result({ backupId: 'a', stage: 'integrity', status: 'PASS', at: '2026-01-01T00:00:00Z' }),
      result({ backupId: 'a', stage: 'restore', status: 'WARN', at: '2026-01-03T00:00:00Z' }),
      result({ backupId: 'a', stage: 'restore', status: 'FAIL', at: '2026-01-04T00:00:00Z' }),
      result({ backupId: 'b', stage: 'redundancy', status: 'PASS', at: '2026-01-05T00:00:00Z' }),
      result({ backupId: 'c', stage: 'integrity', status: 'FAIL', at: '2026-01-05T00:00:00Z' }),
    ]);
    expect(picked.map((r) => [r.backupId, r.stage, r.at])).toEqual([
      ['a', 'restore', '2026-01-03T00:00:00Z'],
    ]);
  });

  test('per series and stage, the newest run stands for it, and within that run the worst result', () => {
    const verdicts = seriesVerdicts([
      result({ runId: 'old', backupId: 'x', status: 'FAIL', at: '2026-01-01T00:00:00Z' }),
      result({ runId: 'new', backupId: 'y', status: 'PASS', at: '2026-01-02T00:00:00Z' }),
      result({ runId: 'new', backupId: 'z', status: 'WARN', at: '2026-01-02T00:00:01Z' }),
      result({ runId: 'new', stage: 'restore', status: 'SKIPPED', at: '2026-01-02T00:00:00Z' }),
      result({ series: 'other', runId: 'old', status: 'PASS', at: '2026-01-01T00:00:00Z' }),
    ]);
    expect(verdicts.map((r) => [r.series, r.stage, r.runId, r.status])).toEqual([
      ['s', 'integrity', 'new', 'WARN'],
      ['other', 'integrity', 'old', 'PASS'],
    ]);
  });

  test('a recorded verdict carries the rank that orders results of one run (FAIL above WARN above PASS)', () => {
    const [pass, warn, fail] = (['PASS', 'WARN', 'FAIL'] as const).map((status) =>
      rankedVerdict(result({ status })),
    );
    expect(pass?.rank).toBeLessThan(warn?.rank as number);
    expect(warn?.rank).toBeLessThan(fail?.rank as number);
    expect(fail).toMatchObject({
      status: 'FAIL',
      runId: 'r1',
      backupId: 'b1',
      at: '2026-01-01T00:00:00.000Z',
    });
  });

  test('a result given twice for one run, backup and stage is recorded once, the later one', () => {
    const list = uniqueResults([
      result({ status: 'FAIL' }),
      result({ stage: 'restore' }),
      result({ status: 'PASS', durationMs: 7 }),
    ]);
    expect(list).toHaveLength(2);
    expect(list.find((r) => r.stage === 'integrity')).toMatchObject({ status: 'PASS', durationMs: 7 });
  });

  test("per series the newest backup is the series' latest; series found only inside a folder backup are not outer", () => {
    const { newest, outerSeries } = newestBackups([
      backup('a1', 'a', '2026-01-01T00:00:00Z'),
      backup('a2', 'a', '2026-01-03T00:00:00Z'),
      backup('a0', 'a', '2026-01-02T00:00:00Z'),
      backup('inner', 'nested', '2026-01-05T00:00:00Z', 'a2'),
    ]);
    expect(newest.map((b) => b.id).sort()).toEqual(['a2', 'inner']);
    expect([...outerSeries]).toEqual(['a']);
  });
});
