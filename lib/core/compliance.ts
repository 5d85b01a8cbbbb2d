import type { Config } from './config.ts';
import { policyFor } from './config.ts';
import { type Finding, finding } from './findings.ts';
import type { Backup } from './model.ts';
import { humanAge } from './units.ts';

/** How far a backup's time may run ahead of this clock before it is FUTURE_TIMESTAMP. */
export const CLOCK_SKEW_MS = 5 * 60_000;

/** Whether a backup's time lies ahead of `now` beyond the clock-skew allowance. */
export function isFutureDated(createdAt: Date, now: Date): boolean {
  return createdAt.getTime() > now.getTime() + CLOCK_SKEW_MS;
}

/**
 * FUTURE_TIMESTAMP for an outer backup dated ahead of now: such a date would hide a stopped job
 * (a negative age never exceeds an RPO), so its RPO is judged from when it was first seen.
 * An archive inside a folder backup shares that backup's fact and gets none of its own.
 */
export function futureTimestampFindings(backup: Backup, now: Date): Finding[] {
  if (backup.parentId !== undefined || !isFutureDated(backup.createdAt, now)) return [];
  const from = backup.createdFrom === 'name' ? 'its name says' : 'its modification time says';
  return [
    finding(
      'FUTURE_TIMESTAMP',
      `${backup.name}: ${from} ${backup.createdAt.toISOString()}, ${humanAge(backup.createdAt.getTime() - now.getTime())} ahead of now: ` +
        "its RPO is judged from when it was first seen; check the backup job's clock and naming",
      { backup: backup.id },
    ),
  ];
}

/** A series the ledger has seen in a source, with the newest backup recorded for it. */
export interface KnownSeries {
  series: string;
  source: string;
  latestBackupId: string;
  latestBackupCreatedAt: string;
}

interface SeriesNewest {
  /** The time RPO is judged from: the backup's time, or when a future-dated one was first seen. */
  createdAt: Date;
  id: string;
  count: number;
  /** Whether any backup of the series is an outer backup (RPO is judged on outer backups' series only). */
  outer: boolean;
  firstSeen?: boolean;
  vanished?: boolean;
}

/** Newest backup of each series, folded in as backups stream past. */
export class SeriesTracker {
  readonly newest = new Map<string, SeriesNewest>();

  /** `firstSeenAt`: for a future-dated backup, when it was first seen, which RPO is judged from. */
  add(backup: Backup, firstSeenAt?: Date): void {
    const at = firstSeenAt ?? backup.createdAt;
    const outer = backup.parentId === undefined;
    const seen = this.newest.get(backup.series);
    if (!seen) {
      const entry: SeriesNewest = { createdAt: at, id: backup.id, count: 1, outer };
      if (firstSeenAt) entry.firstSeen = true;
      this.newest.set(backup.series, entry);
      return;
    }
    seen.count++;
    seen.outer ||= outer;
    if (at > seen.createdAt) {
      seen.createdAt = at;
      seen.id = backup.id;
      if (firstSeenAt) seen.firstSeen = true;
      else delete seen.firstSeen;
    }
  }

  /** A series the ledger recorded with no backup in this listing, judged from its newest recorded backup. */
  addVanished(known: KnownSeries, at: Date): void {
    if (this.newest.has(known.series)) return;
    this.newest.set(known.series, {
      createdAt: at,
      id: known.latestBackupId,
      count: 0,
      outer: true,
      vanished: true,
    });
  }

  /** Series with at least one backup in this listing. */
  get listed(): number {
    let n = 0;
    for (const s of this.newest.values()) if (s.count > 0) n++;
    return n;
  }
}

/**
 * A series the ledger recorded for a source that has no backup in this listing: MISSING_OBJECT
 * naming the newest recorded backup. `createdAt` is the time its RPO is judged from.
 */
export function vanishedSeriesFinding(known: KnownSeries): Finding {
  return finding(
    'MISSING_OBJECT',
    `series "${known.series}" had backups in earlier runs but none is in this listing of ${known.source}: ` +
      `the newest recorded, ${known.latestBackupId} (${known.latestBackupCreatedAt}), is gone; ` +
      'check whether the backups were deleted or moved and whether the job still runs',
    { series: known.series },
  );
}

/** One series' RPO as a run judges it: the age of its newest backup against its RPO. */
export interface RpoCheck {
  series: string;
  /** Judged from when the newest backup was first seen (its own time lies in the future). */
  fromFirstSeen?: boolean;
  /** The series has no backup in this listing: judged from the newest the ledger recorded. */
  vanished?: boolean;
  rpoMinutes: number;
  newestBackupId: string;
  newestBackupCreatedAt: Date;
  newestBackupAgeMinutes: number;
  exceeded: boolean;
}

/**
 * Every series of outer backups with an RPO (0 disables the check), sorted by id: an archive
 * found inside a folder backup is as old as that backup, so one stale job is one finding.
 */
export function rpoChecks(tracker: SeriesTracker, config: Config, now: Date): RpoCheck[] {
  const out: RpoCheck[] = [];
  for (const [series, newest] of [...tracker.newest].sort(([a], [b]) => a.localeCompare(b))) {
    if (!newest.outer) continue;
    const { rpoMinutes } = policyFor(config, series);
    if (rpoMinutes <= 0) continue;
    const age = now.getTime() - newest.createdAt.getTime();
    const check: RpoCheck = {
      series,
      rpoMinutes,
      newestBackupId: newest.id,
      newestBackupCreatedAt: newest.createdAt,
      newestBackupAgeMinutes: Math.floor(age / 60_000),
      exceeded: age > rpoMinutes * 60_000,
    };
    if (newest.firstSeen) check.fromFirstSeen = true;
    if (newest.vanished) check.vanished = true;
    out.push(check);
  }
  return out;
}

/** RPO_EXCEEDED for every series whose newest backup is older than its RPO. */
export function rpoFindings(checks: readonly RpoCheck[]): Finding[] {
  return checks
    .filter((c) => c.exceeded)
    .map((c) =>
      finding(
        'RPO_EXCEEDED',
        `newest ${c.vanished ? 'recorded backup (gone from the listing)' : 'backup'} of series "${c.series}" is ${humanAge(c.newestBackupAgeMinutes * 60_000)} old ` +
          `(${c.newestBackupId}, ${c.fromFirstSeen ? 'first seen ' : ''}${c.newestBackupCreatedAt.toISOString()}); ` +
          `the RPO is ${humanAge(c.rpoMinutes * 60_000)}: check that the backup job still runs`,
        { series: c.series },
      ),
    );
}
