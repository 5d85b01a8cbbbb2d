import { demoStamp } from '../../lib/cli/demo-data.ts';

/** A name timestamp (`20250625_114622`, UTC) for a backup made `hoursAgo` hours ago. */
export function stampHoursAgo(hoursAgo: number): string {
  return demoStamp(new Date(Date.now() - hoursAgo * 3_600_000));
}
