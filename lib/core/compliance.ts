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

/** RPO_EXCEEDED for every series whose newest backup is older than its RPO (0 disables the check). */
export function rpoFindings(tracker: SeriesTracker, config: Config, now: Date): Finding[] {
  const out: Finding[] = [];
  for (const [series, newest] of [...tracker.newest].sort(([a], [b]) => a.localeCompare(b))) {
    const { rpoMinutes } = policyFor(config, series);
    if (rpoMinutes <= 0) continue;
    const age = now.getTime() - newest.createdAt.getTime();
    if (age > rpoMinutes * 60_000) {
      out.push(
        finding(
          'RPO_EXCEEDED',
          `newest backup of series "${series}" is ${formatAge(age)} old (${newest.id}, ${newest.createdAt.toISOString()}); ` +
            `the RPO is ${formatAge(rpoMinutes * 60_000)}: check that the backup job still runs`,
          { series },
        ),
      );
    }
  }
  return out;
}
