import { demoStamp } from '../../lib/cli/demo-data.ts';

// One clock reading per test file: two stamps for the same age taken a moment apart could fall on
// either side of a second and name two different backups (a CI failure did exactly that).
const testFileStartedAt = Date.now();

/** A name timestamp (`20250625_114622`, UTC) for a backup made `hoursAgo` hours before this file started. */
export function stampHoursAgo(hoursAgo: number): string {
  return demoStamp(new Date(testFileStartedAt - hoursAgo * 3_600_000));
}
