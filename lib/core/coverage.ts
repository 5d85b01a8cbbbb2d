import { createHash } from 'node:crypto';
import { type Config, coverageBudgetOwner, type Policy, policyFor } from './config.ts';
import { type Finding, finding } from './findings.ts';
import type { Backup, SeriesCoverage } from './model.ts';

const DAY_MS = 86_400_000;

/** What coverage needs to know of one listed backup: small, so a whole listing's worth fits in a run artifact. */
export interface CoverageCandidate {
  id: string;
  series: string;
  bytes: number;
  /** Estimated GET requests of a full read: one per object and reference file. */
  requests: number;
  createdAt: string;
  /** Last full verification of this version of the backup; absent when never, or changed since. */
  verifiedAt?: string;
  /** Read first whatever the order: never verified (`new`) or different from what was verified (`changed`). */
  fresh?: 'new' | 'changed';
  /** Chosen to be read this run. */
  read?: boolean;
  /** The discovery shard that holds the backup. */
  shard?: number;
}

/** What the ledger keeps of a backup's verification (one Query per series, oldest first). */
export interface VerificationEntry {
  backupId: string;
  lastVerifiedAt?: string;
  /** The fingerprint of the version verified (absent for verifications recorded before coverage). */
  lastVerifiedFingerprint?: string;
}

export interface CoveragePlan {
  candidates: CoverageCandidate[];
  /** Backup id -> why it is not read this run. */
  deferred: Record<string, string>;
}

/** A fingerprint of a backup's listed version: its objects, sizes and entity tags, and its reference files. */
export function backupFingerprint(backup: Backup): string {
  const hash = createHash('sha256');
  for (const m of [...backup.members].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    hash.update(`${m.key}\0${m.size}\0${m.etag ?? m.lastModified.toISOString()}\n`);
  }
  for (const key of [...backup.manifestKeys].sort()) hash.update(`manifest\0${key}\n`);
  if (backup.sidecarKey) hash.update(`sidecar\0${backup.sidecarKey}\n`);
  return hash.digest('hex').slice(0, 32);
}

/** GET requests a full read of the backup makes (resumed reads aside). */
export function readRequestsOf(backup: Backup): number {
  return backup.members.length + backup.manifestKeys.length + (backup.sidecarKey ? 1 : 0);
}

export function coverageEnabled(policy: Policy): boolean {
  return policy.coverage.withinDays > 0;
}

/** What discovery keeps of a listed backup until the ledger has said when it was verified. */
export interface ListedForCoverage {
  id: string;
  series: string;
  bytes: number;
  requests: number;
  createdAt: string;
  fingerprint: string;
  shard?: number;
}

export function listedForCoverage(backup: Backup): ListedForCoverage {
  return {
    id: backup.id,
    series: backup.series,
    bytes: backup.bytes,
    requests: readRequestsOf(backup),
    createdAt: backup.createdAt.toISOString(),
    fingerprint: backupFingerprint(backup),
  };
}

/** A candidate from a listed backup and what the ledger says of its verification. */
export function coverageCandidate(
  listed: ListedForCoverage,
  entry: VerificationEntry | undefined,
): CoverageCandidate {
  const { fingerprint, ...base } = listed;
  if (entry?.lastVerifiedAt === undefined) return { ...base, fresh: 'new' };
  if (entry.lastVerifiedFingerprint !== undefined && entry.lastVerifiedFingerprint !== fingerprint) {
    return { ...base, fresh: 'changed' };
  }
  return { ...base, verifiedAt: entry.lastVerifiedAt };
}

function readOrder(a: CoverageCandidate, b: CoverageCandidate): number {
  if (Boolean(a.fresh) !== Boolean(b.fresh)) return a.fresh ? -1 : 1;
  const av = a.verifiedAt ?? '';
  const bv = b.verifiedAt ?? '';
  if (av !== bv) return av < bv ? -1 : 1;
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function fits(
  used: { bytes: number; requests: number },
  c: CoverageCandidate,
  budget: Policy['coverage']['budget'],
) {
  return (
    (budget.bytes === 0 || used.bytes + c.bytes <= budget.bytes) &&
    (budget.requests === 0 || used.requests + c.requests <= budget.requests)
  );
}

function fmtBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

export function describeBudget(budget: Policy['coverage']['budget']): string {
  const parts = [
    budget.bytes > 0 ? fmtBytes(budget.bytes) : '',
    budget.requests > 0 ? `${budget.requests} requests` : '',
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(' and ') : 'no limit';
}

/**
 * Which backups this run reads: per budget, new and changed backups first, then the longest
 * unverified; taken in that order while they fit. A backup larger than the whole budget can never
 * be read under it: it is passed over (and the series reported behind) so it does not block the rest.
 */
export function planCoverage(candidates: CoverageCandidate[], config: Config): CoveragePlan {
  const pools = new Map<string, CoverageCandidate[]>();
  for (const c of candidates) {
    const owner = coverageBudgetOwner(config, c.series);
    const pool = pools.get(owner) ?? [];
    pool.push(c);
    pools.set(owner, pool);
  }
  const deferred: Record<string, string> = {};
  const none = { bytes: 0, requests: 0 };
  for (const [owner, pool] of pools) {
    const budget = policyFor(config, (pool[0] as CoverageCandidate).series).coverage.budget;
    const tooLarge = `not read this run: larger by itself than the coverage budget of ${owner} (${describeBudget(budget)})`;
    const spentOn = `not read this run: the coverage budget of ${owner} (${describeBudget(budget)}) was spent on backups verified longer ago or never`;
    const used = { bytes: 0, requests: 0 };
    let spent = false;
    for (const c of pool.sort(readOrder)) {
      const alone = fits(none, c, budget);
      if (!spent && alone && fits(used, c, budget)) {
        c.read = true;
        used.bytes += c.bytes;
        used.requests += c.requests;
        continue;
      }
      c.read = false;
      if (alone) spent = true;
      deferred[c.id] = alone ? spentOn : tooLarge;
    }
  }
  return { candidates, deferred };
}

/** Runs of the schedule within one window (at least one). */
function runsPerWindow(policy: Policy): number {
  return Math.max(1, Math.floor(policy.coverage.withinDays / policy.coverage.runEveryDays));
}

/**
 * Coverage of every series with a coverage policy, after this run: the backups in `verifiedNow`
 * count as verified at `now` (the plan assumes every read succeeds; the report passes the backups
 * that did pass or warn). Also the COVERAGE_BEHIND findings.
 */
export function coverageOf(
  plan: CoveragePlan,
  config: Config,
  now: Date,
  verifiedNow: (c: CoverageCandidate) => boolean,
): { series: SeriesCoverage[]; findings: Finding[] } {
  const bySeries = new Map<string, CoverageCandidate[]>();
  for (const c of plan.candidates) {
    const list = bySeries.get(c.series) ?? [];
    list.push(c);
    bySeries.set(c.series, list);
  }
  // Per budget: what its series need per run, and the bytes/requests left outside the window.
  const pools = new Map<
    string,
    {
      budget: Policy['coverage']['budget'];
      needed: { bytes: number; requests: number };
      tooLarge: boolean;
      backlog: { bytes: number; requests: number };
    }
  >();
  const rows: Array<{ row: SeriesCoverage; policy: Policy; overdue: boolean }> = [];
  for (const [series, list] of [...bySeries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const policy = policyFor(config, series);
    const owner = coverageBudgetOwner(config, series);
    const { budget } = policy.coverage;
    const pool = pools.get(owner) ?? {
      budget,
      needed: { bytes: 0, requests: 0 },
      tooLarge: false,
      backlog: { bytes: 0, requests: 0 },
    };
    pools.set(owner, pool);
    const windowStart = now.getTime() - policy.coverage.withinDays * DAY_MS;
    const runs = runsPerWindow(policy);
    let bytes = 0;
    let requests = 0;
    let inWindow = 0;
    let oldest: SeriesCoverage['oldestUnverified'];
    const read = { backups: 0, bytes: 0, requests: 0 };
    let deferredCount = 0;
    for (const c of list) {
      bytes += c.bytes;
      requests += c.requests;
      if (c.read) {
        read.backups++;
        read.bytes += c.bytes;
        read.requests += c.requests;
      } else deferredCount++;
      if (!fits({ bytes: 0, requests: 0 }, c, budget)) pool.tooLarge = true;
      const verifiedAt = verifiedNow(c) ? now.toISOString() : c.verifiedAt;
      if (verifiedAt !== undefined && Date.parse(verifiedAt) >= windowStart) {
        inWindow += c.bytes;
        continue;
      }
      pool.backlog.bytes += c.bytes;
      pool.backlog.requests += c.requests;
      const since = verifiedAt ?? c.createdAt;
      if (oldest === undefined || since < oldest.since) {
        oldest = {
          backup: c.id,
          since,
          ageDays: Math.max(0, Math.floor((now.getTime() - Date.parse(since)) / DAY_MS)),
        };
      }
    }
    pool.needed.bytes += Math.ceil(bytes / runs);
    pool.needed.requests += Math.ceil(requests / runs);
    const row: SeriesCoverage = {
      series,
      withinDays: policy.coverage.withinDays,
      budgetOwner: owner,
      budget,
      backups: list.length,
      bytes,
      bytesVerifiedInWindow: inWindow,
      share: bytes === 0 ? 1 : inWindow / bytes,
      readThisRun: read,
      deferred: deferredCount,
      ...(oldest ? { oldestUnverified: oldest } : {}),
      neededPerRun: { bytes: 0, requests: 0 },
      reachable: true,
      forecastMetAt: null,
      behind: false,
    };
    rows.push({
      row,
      policy,
      overdue: oldest !== undefined && oldest.ageDays > policy.coverage.withinDays,
    });
  }
  const findings: Finding[] = [];
  for (const { row, policy, overdue } of rows) {
    const pool = pools.get(row.budgetOwner) as NonNullable<ReturnType<typeof pools.get>>;
    const { budget, needed, backlog } = pool;
    row.neededPerRun = { ...needed };
    row.reachable =
      !pool.tooLarge &&
      (budget.bytes === 0 || needed.bytes <= budget.bytes) &&
      (budget.requests === 0 || needed.requests <= budget.requests);
    const runsToClear =
      backlog.bytes === 0 && backlog.requests === 0
        ? 0
        : Math.max(
            1,
            budget.bytes === 0 ? 1 : Math.ceil(backlog.bytes / budget.bytes),
            budget.requests === 0 ? 1 : Math.ceil(backlog.requests / budget.requests),
          );
    row.forecastMetAt =
      row.bytesVerifiedInWindow === row.bytes
        ? now.toISOString()
        : row.reachable
          ? new Date(now.getTime() + runsToClear * policy.coverage.runEveryDays * DAY_MS).toISOString()
          : null;
    row.behind = !row.reachable || (overdue && runsToClear > runsPerWindow(policy));
    if (!row.behind) continue;
    const why = !row.reachable
      ? pool.tooLarge
        ? `a backup is larger by itself than the coverage budget of ${row.budgetOwner} (${describeBudget(budget)}): it can never be read under it`
        : `reading every backup once in ${policy.coverage.withinDays} days needs ${describeBudget({
            bytes: budget.bytes > 0 ? needed.bytes : 0,
            requests: budget.requests > 0 ? needed.requests : 0,
          })} per run (a run every ${policy.coverage.runEveryDays} day(s)), the budget of ${row.budgetOwner} is ${describeBudget(budget)}`
      : `the budget of ${row.budgetOwner} (${describeBudget(budget)}) needs ${runsToClear} runs to read what is overdue`;
    const oldest = row.oldestUnverified
      ? `; ${row.oldestUnverified.backup} unverified for ${row.oldestUnverified.ageDays} days`
      : '';
    findings.push({
      ...finding(
        'COVERAGE_BEHIND',
        `coverage within ${policy.coverage.withinDays} days cannot be kept: ${why}${oldest}`,
        {
          series: row.series,
        },
      ),
      severity: policy.coverage.behind,
    });
  }
  return { series: rows.map((r) => r.row), findings };
}
