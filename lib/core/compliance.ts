import type { Config } from './config.ts';
import { policyFor } from './config.ts';
import { type Finding, finding } from './findings.ts';
import type { Backup } from './model.ts';

/** Newest backup of each series, folded in as backups stream past. */
export class SeriesTracker {
  readonly newest = new Map<string, { createdAt: Date; id: string; count: number }>();

  add(backup: Backup): void {
    const seen = this.newest.get(backup.series);
    if (!seen) this.newest.set(backup.series, { createdAt: backup.createdAt, id: backup.id, count: 1 });
    else {
      seen.count++;
      if (backup.createdAt > seen.createdAt) {
        seen.createdAt = backup.createdAt;
        seen.id = backup.id;
      }
    }
  }
}

export function formatAge(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 72) return `${hours} h`;
  return `${Math.floor(hours / 24)} d`;
}

/** One series' RPO as a run judges it: the age of its newest backup against its RPO. */
export interface RpoCheck {
  series: string;
  rpoMinutes: number;
  newestBackupId: string;
  newestBackupCreatedAt: Date;
  newestBackupAgeMinutes: number;
  exceeded: boolean;
}

/** Every series with an RPO (0 disables the check), sorted by name. */
export function rpoChecks(tracker: SeriesTracker, config: Config, now: Date): RpoCheck[] {
  const out: RpoCheck[] = [];
  for (const [series, newest] of [...tracker.newest].sort(([a], [b]) => a.localeCompare(b))) {
    const { rpoMinutes } = policyFor(config, series);
    if (rpoMinutes <= 0) continue;
    const age = now.getTime() - newest.createdAt.getTime();
    out.push({
      series,
      rpoMinutes,
      newestBackupId: newest.id,
      newestBackupCreatedAt: newest.createdAt,
      newestBackupAgeMinutes: Math.floor(age / 60_000),
      exceeded: age > rpoMinutes * 60_000,
    });
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
        `newest backup of series "${c.series}" is ${formatAge(c.newestBackupAgeMinutes * 60_000)} old (${c.newestBackupId}, ${c.newestBackupCreatedAt.toISOString()}); ` +
          `the RPO is ${formatAge(c.rpoMinutes * 60_000)}: check that the backup job still runs`,
        { series: c.series },
      ),
    );
}
