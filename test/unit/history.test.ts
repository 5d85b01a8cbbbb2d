import { describe, expect, it } from 'vitest';
import { renderHistory, sparkline } from '../../lib/cli/history-text.ts';
import { type HistoryData, historyJson, loadHistory, trendOf } from '../../lib/core/history.ts';
import {
  applyResultsToBaseline,
  BASELINE_POINTS,
  emptyBaseline,
  sizeAnomaly,
} from '../../lib/core/ledger.ts';
import { humanBytes as formatBytes, humanAge, humanTime } from '../../lib/core/units.ts';
import { renderHistoryHtml } from '../../lib/html-report/history-page.ts';
import { backup, newLedger, result } from '../integration/ledger-support.ts';

const SPARK = /[▁▂▃▄▅▆▇█]/;

function sample(): HistoryData {
  const point = (i: number, value: number) => ({
    at: `2025-01-${String(i + 1).padStart(2, '0')}T00:00:00.000Z`,
    value,
    runId: `run-${i}`,
    backupId: `b-${i}`,
  });
  return {
    generatedAt: '2025-02-01T00:00:00.000Z',
    runs: [
      {
        runId: 'run-2',
        trigger: 'schedule',
        sources: ['s3://b'],
        startedAt: '2025-01-31T02:00:00.000Z',
        finishedAt: '2025-01-31T02:10:00.000Z',
        status: 'FAIL',
        counts: { backups: 5, pass: 3, warn: 1, fail: 1, series: 2 },
      },
      {
        runId: 'run-3',
        trigger: 'cli',
        sources: ['/x'],
        startedAt: '2025-02-01T00:00:00.000Z',
        status: 'RUNNING',
      },
    ],
    series: [
      {
        series: 'db-nightly',
        status: 'WARN',
        lastCheckedAt: '2025-01-31T02:05:00.000Z',
        sizes: [1, 2, 3, 4, 5, 6, 7, 8].map((v, i) => point(i, v * 1024 * 1024)),
        scores: [1, 1, 0.5, 1].map((v, i) => point(i, v)),
        restoreMs: [1200, 1300, 65_000].map((v, i) => point(i, v)),
      },
    ],
  };
}

describe('renderHistory', () => {
  it('shows the runs table and sparklines on a unicode terminal', () => {
    const text = renderHistory(sample(), { width: 100, unicode: true });
    expect(text).toMatch(/RUN ID\s+STARTED\s+TRIGGER\s+STATUS\s+PASS\s+WARN\s+FAIL/);
    expect(text).toMatch(/run-2\s+2025-01-31 02:00\s+schedule\s+FAIL\s+3\s+1\s+1/);
    expect(text).toMatch(
      /run-3\s+2025-02-01 00:00\s+cli\s+RUNNING \(started \d+ \w+ ago; no end recorded — the process may have been killed\)\s+-\s+-\s+-/,
    );
    expect(text).toContain('db-nightly  WARN');
    expect(text).toMatch(/size\s+▁▂▃▄▅▆▇█ {2}last 8\.0 MiB/);
    expect(text).toMatch(/score\s+██▁█ {2}last 1\.00/);
    expect(text).toMatch(/restore\s+▁▁█ {2}last 1 min 5 s/);
  });

  it('prints plain numbers, no sparkline characters, when not unicode', () => {
    const text = renderHistory(sample(), { width: 100, unicode: false });
    expect(text).not.toMatch(SPARK);
    expect(text).not.toContain('→');
    expect(text).toContain('1.0 MiB, 2.0 MiB, 3.0 MiB');
    expect(text).toContain('1.2 s, 1.3 s, 1 min 5 s');
  });

  it('keeps the newest points and fits the width when there are too many', () => {
    const data = sample();
    const series = data.series[0];
    if (!series) throw new Error('sample has a series');
    series.scores = Array.from(
      { length: 200 },
      (_, i) => ({ ...series.scores[0], value: (i % 10) / 10 }) as never,
    );
    for (const unicode of [true, false]) {
      const text = renderHistory(data, { width: 60, unicode });
      const line = text.split('\n').find((l) => l.trimStart().startsWith('score')) as string;
      expect(line.length).toBeLessThanOrEqual(60);
      if (!unicode) {
        expect(line).toContain('...');
        expect(line.endsWith('0.90')).toBe(true);
      }
    }
  });

  it('says so when the ledger is empty', () => {
    const text = renderHistory({ generatedAt: 'x', runs: [], series: [] }, { width: 80, unicode: false });
    expect(text).toContain('no runs recorded in this ledger yet');
    expect(text).toContain('no series recorded in this ledger yet');
  });
});

describe('history --html', () => {
  it('labels the RTO line of the restore-time chart as the RTO_EXCEEDED finding words it', () => {
    const page = renderHistoryHtml(sample(), () => ({ rpoMinutes: 1440, rtoMinutes: 90 }));
    expect(page).toContain(`RTO ${humanTime(90 * 60_000)}`);
    expect(page).toContain('RTO 1 h 30 min');
  });
});

describe('history helpers', () => {
  it('sparkline spans the bars from min to max and a flat line sits mid-height', () => {
    expect(sparkline([0, 7, 14])).toBe('▁▅█');
    expect(sparkline([3, 3, 3])).toBe('▅▅▅');
    expect(sparkline([])).toBe('');
  });

  it('formats sizes and durations', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(300 * 1024 ** 3)).toBe('300 GiB');
    expect(humanTime(850)).toBe('850 ms');
    expect(humanTime(3200)).toBe('3.2 s');
    expect(humanTime(125_000)).toBe('2 min 5 s');
  });

  it('formats ages in whole minutes, hours or days', () => {
    expect(
      [0, 119 * 60_000, 120 * 60_000, 71 * 3_600_000, 72 * 3_600_000, 10 * 86_400_000].map(humanAge),
    ).toEqual(['0 min', '119 min', '2 h', '71 h', '3 d', '10 d']);
    expect(humanAge(-1)).toBe('future');
  });

  it('trendOf: one size point per backup, oldest first; failed and skipped restores left out', () => {
    const b1 = backup('a-1.tar', 'a', '2025-01-01T00:00:00Z', 100);
    const b2 = backup('a-2.tar', 'a', '2025-01-02T00:00:00Z', 200);
    const newestFirst = [
      result('r3', b2, 'restore', 'FAIL', '2025-01-03T00:02:00.000Z', { durationMs: 9 }),
      result('r3', b2, 'integrity', 'PASS', '2025-01-03T00:01:00.000Z'),
      result('r2', b2, 'integrity', 'PASS', '2025-01-02T00:01:00.000Z'),
      result('r2', b1, 'restore', 'PASS', '2025-01-02T00:00:30.000Z', { durationMs: 5 }),
      result('r1', b1, 'integrity', 'FAIL', '2025-01-01T00:01:00.000Z'),
      result('r1', b1, 'restore', 'SKIPPED', '2025-01-01T00:02:00.000Z'),
    ];
    const trend = trendOf({ series: 'a', status: 'FAIL', stages: {} }, newestFirst);
    expect(trend.sizes.map((p) => p.value)).toEqual([100, 200]);
    expect(trend.scores.map((p) => p.value)).toEqual([0.5, 1, 1]);
    expect(trend.restoreMs.map((p) => p.value)).toEqual([5]);
  });

  it('historyJson is plain JSON with a schema version', () => {
    const json = historyJson(sample());
    expect(json.schemaVersion).toBe(1);
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
    expect(json.series[0]?.sizes).toHaveLength(8);
  });
});

describe('baseline rule and size anomaly', () => {
  it('keeps the newest 20 sizes, one per backup, and is unchanged by a repeat', () => {
    let baseline = emptyBaseline('s');
    for (let i = 0; i < 25; i++) {
      const b = backup(`s-${i}.tar`, 's', '2025-01-01T00:00:00Z', 1000 + i);
      baseline = applyResultsToBaseline(baseline, [
        result('r', b, 'integrity', 'PASS', `2025-01-01T00:00:${String(i).padStart(2, '0')}.000Z`),
      ]);
    }
    expect(baseline.sizes).toHaveLength(BASELINE_POINTS);
    expect(baseline.sizes[0]?.bytes).toBe(1005);
    expect(baseline.sizes.at(-1)?.bytes).toBe(1024);
    const again = applyResultsToBaseline(baseline, [
      result(
        'r',
        backup('s-24.tar', 's', '2025-01-01T00:00:00Z', 1024),
        'integrity',
        'PASS',
        '2025-01-09T00:00:00.000Z',
      ),
    ]);
    expect(again).toBe(baseline);
  });

  it('flags below 50 % or above 200 % of the median of at least 3 previous backups', () => {
    let baseline = emptyBaseline('s');
    const add = (name: string, bytes: number, files: number) => {
      baseline = applyResultsToBaseline(baseline, [
        result(
          'r',
          backup(name, 's', '2025-01-01T00:00:00Z', bytes),
          'integrity',
          'PASS',
          `2025-01-01T00:00:0${baseline.sizes.length}.000Z`,
          {
            files,
          },
        ),
      ]);
    };
    add('a', 1000, 10);
    add('b', 1100, 10);
    expect(sizeAnomaly(baseline, 10, 10)).toBeUndefined();
    add('c', 900, 10);
    expect(sizeAnomaly(baseline, 1000, 10)).toBeUndefined();
    expect(sizeAnomaly(baseline, 499, 10)).toMatch(
      /^size 499 B is 50% of the median 1000 B of the last 3 backups$/,
    );
    expect(sizeAnomaly(baseline, 2001, 10)).toMatch(/^size 2.0 KiB is 200% of the median 1000 B/);
    expect(sizeAnomaly(baseline, 1000, 21)).toMatch(/^file count 21 is 210% of the median 10/);
    expect(sizeAnomaly(baseline, 1000, 5)).toBeUndefined();
    expect(sizeAnomaly(baseline, 1000, 4)).toMatch(/file count 4/);
    // A backup's own point is not compared with itself: with it left out, only 2 remain.
    expect(sizeAnomaly(baseline, 10, 10, '/backups/c')).toBeUndefined();
  });
});

describe('loadHistory over a real ledger', () => {
  it('gathers runs and per-series trends with Queries only', async () => {
    const { ledger, commands } = await newLedger();
    const sizes = [100, 120, 90, 400];
    for (const [i, bytes] of sizes.entries()) {
      const runId = `run-${i}`;
      const b = backup(`db-${i}.tar`, 'db', `2025-01-0${i + 1}T00:00:00Z`, bytes);
      await ledger.startRun({
        runId,
        trigger: 'schedule',
        sources: ['/b'],
        startedAt: `2025-01-0${i + 1}T01:00:00.000Z`,
      });
      await ledger.recordResults([
        result(runId, b, 'integrity', 'PASS', `2025-01-0${i + 1}T01:01:00.000Z`),
        result(runId, b, 'restore', 'PASS', `2025-01-0${i + 1}T01:02:00.000Z`, {
          durationMs: 1000 * (i + 1),
        }),
      ]);
      await ledger.finishRun(runId, {
        status: 'PASS',
        counts: { backups: 1, pass: 1, warn: 0, fail: 0, series: 1 },
        finishedAt: `2025-01-0${i + 1}T01:03:00.000Z`,
      });
    }
    const other = backup('web-0.tar', 'web', '2025-01-01T00:00:00Z', 7);
    await ledger.recordResults([result('run-0', other, 'integrity', 'PASS', '2025-01-01T01:05:00.000Z')]);
    commands.length = 0;
    const data = await loadHistory(ledger, { runs: 3 });
    expect(commands.every((c) => c === 'QueryCommand')).toBe(true);
    expect(commands).toHaveLength(4); // runs, series, and one per series
    expect(data.runs.map((r) => r.runId)).toEqual(['run-3', 'run-2', 'run-1']);
    expect(data.series.map((s) => s.series)).toEqual(['db', 'web']);
    const db = data.series[0];
    expect(db?.sizes.map((p) => p.value)).toEqual(sizes);
    expect(db?.restoreMs.map((p) => p.value)).toEqual([1000, 2000, 3000, 4000]);
    const only = await loadHistory(ledger, { series: 'web' });
    expect(only.series.map((s) => s.series)).toEqual(['web']);
    const text = renderHistory(data, { width: 80, unicode: true });
    expect(text).toMatch(/size\s+▁▂▁█ {2}last 400 B/);
    await ledger.close();
  });

  it('regression: a series whose newest backup was older than its RPO when checked shows as FAIL, not its last PASS', async () => {
    const { ledger } = await newLedger();
    const stale = backup('web-0.tar', 'web', '2025-01-01T00:00:00Z', 7);
    const fresh = backup('db-0.tar', 'db', '2025-01-04T23:00:00Z', 9);
    await ledger.recordCatalogue('run-0', [stale, fresh]);
    await ledger.recordResults([
      result('run-0', stale, 'integrity', 'PASS', '2025-01-05T00:00:00.000Z'),
      result('run-0', fresh, 'integrity', 'PASS', '2025-01-05T00:00:00.000Z'),
    ]);
    // A week later, with no run since: db was fresh when checked and stays PASS.
    const data = await loadHistory(ledger, {
      now: new Date('2025-01-12T00:00:00Z'),
      rpoMinutesFor: () => 1440,
    });
    const [db, web] = data.series;
    expect(db?.status).toBe('PASS');
    expect(db?.rpoExceeded).toBeUndefined();
    expect(web?.status).toBe('FAIL');
    expect(web?.rpoExceeded).toEqual({ rpoMinutes: 1440, newestBackupAgeMinutes: 4 * 1440 });
    expect(renderHistory(data, { width: 100, unicode: false })).toMatch(
      /web {2}FAIL.*\n {4}RPO_EXCEEDED: the newest backup was 4 d old when last checked, the RPO is 24 h/,
    );
    // Without an RPO (0) nothing is judged stale.
    const none = await loadHistory(ledger, { now: new Date('2025-01-12T00:00:00Z'), rpoMinutesFor: () => 0 });
    expect(none.series.map((s) => s.status)).toEqual(['PASS', 'PASS']);
    await ledger.close();
  });

  it("the run's recorded RPO verdict decides over the RPO given to history", async () => {
    const { ledger } = await newLedger();
    const old = backup('web-0.tar', 'web', '2025-01-01T00:00:00Z', 7);
    await ledger.recordCatalogue('run-0', [old]);
    await ledger.recordResults([result('run-0', old, 'integrity', 'PASS', '2025-01-08T00:00:00.000Z')]);
    const check = {
      series: 'web',
      rpoMinutes: 10_080,
      newestBackupId: old.id,
      newestBackupCreatedAt: old.createdAt,
    };
    // The pipeline's policy gave web a week: 7 days old was within it.
    await ledger.recordSeriesRpo('run-0', '2025-01-08T00:00:00.000Z', [
      { ...check, newestBackupAgeMinutes: 7 * 1440, exceeded: false },
    ]);
    const lenient = await loadHistory(ledger, { rpoMinutesFor: () => 1440 });
    expect(lenient.series[0]?.status).toBe('PASS');
    await ledger.recordSeriesRpo('run-1', '2025-01-09T00:00:00.000Z', [
      { ...check, newestBackupAgeMinutes: 8 * 1440, exceeded: true },
    ]);
    const strict = await loadHistory(ledger, { rpoMinutesFor: () => 0 });
    expect(strict.series[0]?.status).toBe('FAIL');
    expect(strict.series[0]?.rpoExceeded).toEqual({ rpoMinutes: 10_080, newestBackupAgeMinutes: 8 * 1440 });
    await ledger.close();
  });
});

describe('issue 10: a run left RUNNING', () => {
  const data = {
    generatedAt: '2025-02-01T03:00:00.000Z',
    runs: [
      {
        runId: 'killed',
        trigger: 'cli' as const,
        sources: ['/x'],
        startedAt: '2025-02-01T00:00:00.000Z',
        status: 'RUNNING' as const,
      },
      {
        runId: 'stopped',
        trigger: 'cli' as const,
        sources: ['/x'],
        startedAt: '2025-02-01T00:00:00.000Z',
        status: 'ABORTED' as const,
        counts: { backups: 12, pass: 2, warn: 0, fail: 1, series: 1, skipped: 9 },
      },
    ],
    series: [],
  };

  it('issue 10: history shows a RUNNING run with its age and that its process may have been killed', () => {
    const text = renderHistory(data, { width: 200, unicode: true });
    expect(text).toContain('RUNNING (started 3 h ago; no end recorded — the process may have been killed)');
    expect(renderHistory(data, { width: 200, unicode: false })).toContain(
      'RUNNING (started 3 h ago; no end recorded - the process may have been killed)',
    );
    expect(text).toMatch(/stopped\s+2025-02-01 00:00\s+cli\s+ABORTED\s+2\s+0\s+1\s+9/);
    const json = historyJson(data);
    expect(json.runs[0]).toMatchObject({
      status: 'RUNNING',
      unfinished: { startedAgoSeconds: 3 * 3600, note: 'no end recorded — the process may have been killed' },
    });
    expect(json.runs[1]).not.toHaveProperty('unfinished');
  });
});
