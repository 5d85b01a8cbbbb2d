import { describe, expect, it } from 'vitest';
import {
  type Config,
  coverageBudgetOwner,
  parseConfig,
  parseSize,
  policyFor,
} from '../../lib/core/config.ts';
import {
  type CoverageCandidate,
  coverageCandidate,
  coverageOf,
  type ListedForCoverage,
  planCoverage,
} from '../../lib/core/coverage.ts';
import { UsageError } from '../../lib/core/errors.ts';
import { renderHtmlReport } from '../../lib/html-report/page.ts';

const DAY = 86_400_000;
const KiB = 1024;

describe('issue 15: coverage policy in the configuration', () => {
  it('parses sizes in SI and binary units, or bytes', () => {
    expect(parseSize('2 TiB')).toBe(2 * 1024 ** 4);
    expect(parseSize('500GB')).toBe(500 * 1000 ** 3);
    expect(parseSize('1.5 KiB')).toBe(1536);
    expect(parseSize(4096)).toBe(4096);
    expect(parseSize('12')).toBe(12);
    for (const bad of ['2 TB/s', 'lots', -1, 1.5, '', '1e3 GB', null]) expect(parseSize(bad)).toBeUndefined();
  });

  it('reads coverage per series or in defaults; a wrong value names its key', () => {
    const config = parseConfig({
      defaults: { coverage: { withinDays: 30, budget: { bytes: '2 TiB', requests: 200000 } } },
      series: {
        'db-*': { coverage: { withinDays: 7, behind: 'error' } },
        'web-*': { coverage: { budget: { bytes: '1 GiB' } } },
      },
    });
    expect(policyFor(config, '/srv/db-nightly').coverage).toEqual({
      withinDays: 7,
      budget: { bytes: 2 * 1024 ** 4, requests: 200000 },
      runEveryDays: 1,
      behind: 'error',
    });
    expect(policyFor(config, '/srv/web-1').coverage.budget).toEqual({ bytes: 1024 ** 3, requests: 200000 });
    expect(coverageBudgetOwner(config, '/srv/db-nightly')).toBe('defaults');
    expect(coverageBudgetOwner(config, '/srv/web-1')).toBe('series.web-*');
    expect(parseConfig(undefined).defaults.coverage.withinDays).toBe(0);
    for (const [doc, key] of [
      [{ defaults: { coverage: { budget: { bytes: 'much' } } } }, 'defaults.coverage.budget.bytes'],
      [{ defaults: { coverage: { runEveryDays: 0 } } }, 'defaults.coverage.runEveryDays'],
      [{ defaults: { coverage: { behind: 'fatal' } } }, 'defaults.coverage.behind'],
      [{ defaults: { coverage: { every: 1 } } }, 'defaults.coverage.every'],
      [{ prices: { s3GetPer1000: -1 } }, 'prices.s3GetPer1000'],
      [{ prices: { gold: 1 } }, 'prices.gold'],
    ] as const) {
      expect(() => parseConfig(doc)).toThrow(UsageError);
      try {
        parseConfig(doc);
      } catch (error) {
        expect((error as UsageError).message).toContain(key);
      }
    }
  });

  it('prices override the defaults key by key', () => {
    const config = parseConfig({ prices: { region: 'eu-west-1', s3GetPer1000: 0.00042 } });
    expect(config.prices.region).toBe('eu-west-1');
    expect(config.prices.s3GetPer1000).toBe(0.00042);
    expect(config.prices.lambdaGbSecond).toBeGreaterThan(0);
  });
});

function listed(id: string, bytes: number, createdAt: Date, fingerprint = 'v1'): ListedForCoverage {
  return { id, series: '/src/db', bytes, requests: 1, createdAt: createdAt.toISOString(), fingerprint };
}

describe('issue 15: what a run reads under the budget', () => {
  const config = parseConfig({ defaults: { coverage: { withinDays: 30, budget: { bytes: 10 * KiB } } } });
  const t0 = new Date('2025-01-01T00:00:00Z');

  it('new and changed backups first, then the longest unverified; the budget is never exceeded', () => {
    const candidates: CoverageCandidate[] = [
      coverageCandidate(listed('old', 4 * KiB, t0), {
        backupId: 'old',
        lastVerifiedAt: '2025-01-02T00:00:00Z',
      }),
      coverageCandidate(listed('older', 4 * KiB, t0), {
        backupId: 'older',
        lastVerifiedAt: '2025-01-01T00:00:00Z',
      }),
      coverageCandidate(listed('new', 3 * KiB, t0), undefined),
      coverageCandidate(listed('changed', 2 * KiB, t0, 'v2'), {
        backupId: 'changed',
        lastVerifiedAt: '2025-01-03T00:00:00Z',
        lastVerifiedFingerprint: 'v1',
      }),
    ];
    expect(candidates.map((c) => c.fresh)).toEqual([undefined, undefined, 'new', 'changed']);
    const plan = planCoverage(candidates, config);
    const read = plan.candidates.filter((c) => c.read).map((c) => c.id);
    expect(read.sort()).toEqual(['changed', 'new', 'older']);
    expect(Object.keys(plan.deferred)).toEqual(['old']);
    expect(plan.deferred.old).toMatch(/budget of defaults .* was spent/);
  });

  it('a backup larger than the whole budget is passed over, not a block for the rest, and the series is behind', () => {
    const plan = planCoverage(
      [
        coverageCandidate(listed('huge', 20 * KiB, t0), undefined),
        coverageCandidate(listed('small', KiB, t0), undefined),
      ],
      config,
    );
    expect(plan.candidates.find((c) => c.id === 'small')?.read).toBe(true);
    expect(plan.deferred.huge).toMatch(/larger by itself/);
    const { series, findings } = coverageOf(plan, config, t0, (c) => c.read === true);
    expect(series[0]?.reachable).toBe(false);
    expect(findings.map((f) => f.code)).toEqual(['COVERAGE_BEHIND']);
  });
});

interface Simulated {
  id: string;
  bytes: number;
  createdAt: Date;
  verifiedAt?: Date;
}

/**
 * A year of nightly backups kept 90 days, the tool run weekly under a budget, on a fake clock:
 * the ledger is a map of last verifications, what each run reads is what the plan chose.
 */
function simulateYear(config: Config, options: { history: number }) {
  const backups: Simulated[] = [];
  const start = new Date('2025-01-01T02:00:00Z');
  // Backups the system already had when the tool arrived.
  for (let d = options.history; d > 0; d--) {
    backups.push({
      id: `pre-${d}`,
      bytes: KiB + ((d * 37) % 200),
      createdAt: new Date(start.getTime() - d * DAY),
    });
  }
  const runs: Array<{
    at: Date;
    readBytes: number;
    readRequests: number;
    series: ReturnType<typeof coverageOf>['series'];
    findings: ReturnType<typeof coverageOf>['findings'];
    worstAgeDays: number;
  }> = [];
  for (let day = 0; day < 365; day++) {
    const night = new Date(start.getTime() + day * DAY);
    backups.push({ id: `b-${day}`, bytes: KiB + ((day * 53) % 300), createdAt: night });
    // Retention: 90 days.
    while ((backups[0] as Simulated).createdAt.getTime() < night.getTime() - 90 * DAY) backups.shift();
    if (day % 7 !== 6) continue;
    const now = new Date(night.getTime() + 3 * 3_600_000);
    const plan = planCoverage(
      backups.map((b) =>
        coverageCandidate(
          {
            id: b.id,
            series: '/src/db',
            bytes: b.bytes,
            requests: 1,
            createdAt: b.createdAt.toISOString(),
            fingerprint: 'v',
          },
          b.verifiedAt
            ? { backupId: b.id, lastVerifiedAt: b.verifiedAt.toISOString(), lastVerifiedFingerprint: 'v' }
            : undefined,
        ),
      ),
      config,
    );
    const read = new Set(plan.candidates.filter((c) => c.read).map((c) => c.id));
    let readBytes = 0;
    for (const b of backups) {
      if (!read.has(b.id)) continue;
      b.verifiedAt = now;
      readBytes += b.bytes;
    }
    const { series, findings } = coverageOf(plan, config, now, (c) => read.has(c.id));
    const worstAgeDays = Math.max(
      ...backups.map((b) => (now.getTime() - (b.verifiedAt ?? b.createdAt).getTime()) / DAY),
    );
    runs.push({ at: now, readBytes, readRequests: read.size, series, findings, worstAgeDays });
  }
  return runs;
}

describe('issue 15: a simulated year of nightly backups, checked weekly under a budget', () => {
  it('every object is verified within the window and no run exceeds its budget', () => {
    const budget = 30 * KiB;
    const config = parseConfig({
      defaults: { coverage: { withinDays: 30, runEveryDays: 7, budget: { bytes: budget, requests: 40 } } },
    });
    const runs = simulateYear(config, { history: 90 });
    expect(runs).toHaveLength(52);
    for (const run of runs) {
      expect(run.readBytes).toBeLessThanOrEqual(budget);
      expect(run.readRequests).toBeLessThanOrEqual(40);
    }
    // The first runs work through the 90 days found when the tool arrived; from then on, nothing
    // goes longer than the window unverified, and no run says the series is behind.
    const catchUp = runs.findIndex((r) => r.series[0]?.share === 1);
    expect(catchUp).toBeGreaterThanOrEqual(0);
    expect(catchUp).toBeLessThanOrEqual(5);
    // While it catches up, the forecast says when the window will be met.
    for (const run of runs.slice(0, catchUp)) expect(run.series[0]?.forecastMetAt).not.toBeNull();
    for (const run of runs.slice(catchUp)) {
      expect(run.worstAgeDays).toBeLessThanOrEqual(30);
      expect(run.series[0]?.share).toBe(1);
      expect(run.series[0]?.forecastMetAt).toBe(run.at.toISOString());
    }
    expect(runs.every((r) => r.findings.length === 0)).toBe(true);
    expect(runs.every((r) => r.series[0]?.reachable)).toBe(true);
  });

  it('a budget too small for the data is COVERAGE_BEHIND from the first run, and never exceeded either', () => {
    const budget = 10 * KiB;
    const config = parseConfig({
      defaults: { coverage: { withinDays: 30, runEveryDays: 7, budget: { bytes: budget }, behind: 'error' } },
    });
    const runs = simulateYear(config, { history: 90 });
    for (const run of runs) {
      expect(run.readBytes).toBeLessThanOrEqual(budget);
      expect(run.findings.map((f) => `${f.code}:${f.severity}`)).toEqual(['COVERAGE_BEHIND:error']);
      expect(run.series[0]).toMatchObject({ reachable: false, forecastMetAt: null, behind: true });
    }
    expect(runs[0]?.findings[0]?.message).toMatch(
      /needs \d+(\.\d)? KiB per run .* budget of defaults is 10\.0 KiB/,
    );
    expect(runs[0]?.series[0]?.oldestUnverified?.ageDays).toBeGreaterThan(30);
  });

  it('series sharing the defaults budget share it; a series entry with its own budget has its own', () => {
    const config = parseConfig({
      defaults: { coverage: { withinDays: 30, budget: { bytes: 2 * KiB } } },
      series: { web: { coverage: { budget: { bytes: 2 * KiB } } } },
    });
    const t = new Date('2025-01-01T00:00:00Z');
    const make = (id: string, series: string) =>
      coverageCandidate(
        { id, series, bytes: KiB, requests: 1, createdAt: t.toISOString(), fingerprint: 'v' },
        undefined,
      );
    const plan = planCoverage(
      [
        make('a1', '/s/a'),
        make('a2', '/s/a'),
        make('b1', '/s/b'),
        make('w1', '/s/web'),
        make('w2', '/s/web'),
      ],
      config,
    );
    const read = plan.candidates.filter((c) => c.read).map((c) => c.id);
    expect(read.filter((id) => !id.startsWith('w'))).toHaveLength(2);
    expect(read.filter((id) => id.startsWith('w')).sort()).toEqual(['w1', 'w2']);
  });
});

describe('issue 15: coverage and cost in the HTML report', () => {
  it('shows each series coverage and the cost estimate, names escaped', () => {
    const series = '/src/<script>db';
    const page = renderHtmlReport({
      report: {
        schemaVersion: 1,
        runId: 'r1',
        command: 'integrity',
        trigger: 'cli',
        sources: ['/src'],
        startedAt: '2025-01-01T00:00:00.000Z',
        finishedAt: '2025-01-01T00:01:00.000Z',
        status: 'WARN',
        counts: { backups: 0, pass: 0, warn: 1, fail: 0, skipped: 0, series: 0, seriesRows: 1 },
        backups: [],
        findings: [],
        coverage: [
          {
            series,
            withinDays: 30,
            budgetOwner: 'defaults',
            budget: { bytes: 10, requests: 0 },
            backups: 2,
            bytes: 20,
            bytesVerifiedInWindow: 10,
            share: 0.5,
            readThisRun: { backups: 1, bytes: 10, requests: 1 },
            deferred: 1,
            oldestUnverified: { backup: `${series}-1`, since: '2024-11-01T00:00:00.000Z', ageDays: 61 },
            neededPerRun: { bytes: 20, requests: 2 },
            reachable: false,
            forecastMetAt: null,
            behind: true,
          },
        ],
        cost: {
          region: 'us-east-1',
          usage: {
            s3GetRequests: 3,
            s3ListRequests: 1,
            s3HeadRequests: 0,
            s3BytesRead: 10,
            lambdaGbSeconds: 0,
            lambdaRequests: 0,
            fargateVcpuSeconds: 0,
            fargateGbSeconds: 0,
            fargateStorageGbSeconds: 0,
            stepFunctionsTransitions: 0,
          },
          estimate: { s3: 0.0012, lambda: 0, fargate: 0, stepFunctions: 0, total: 0.0012 },
          estimated: ['S3 GET: <one per object>'],
        },
      },
    });
    expect(page).toContain('<h2>Coverage</h2>');
    expect(page).toMatch(
      /50\.0%<\/td><td>1 \(10 B\)<\/td><td>1<\/td><td>61 days<\/td><td>never at this budget<\/td><td>BEHIND/,
    );
    expect(page).toContain('$0.0012 at us-east-1 prices');
    expect(page).toContain('&lt;one per object&gt;');
    expect(page).not.toContain('<script>');
  });
});
