import type { Backup } from '../model.ts';

const GIB = 1024 ** 3;

/** What a Fargate task's ephemeral storage can be (GiB); the image's layers live in it too. */
export const FARGATE_EPHEMERAL_GIB = { min: 21, max: 200 } as const;

/**
 * Room beside the restored data: the image's unpacked layers (~0.5 GiB), /tmp, probe scratch
 * (a SQLite integrity check or a dump's temporary files), and file-system overhead for many
 * small files: 10 % of the data plus 5 GiB.
 */
const MARGIN = { ratio: 1.1, fixedGiB: 5 } as const;

/**
 * Scratch storage a restore needs (GiB). The integrity pass measured what the backup expands to
 * (archives are streamed, so only the expanded tree lands on disk; a directory backup lands as
 * it is); without that measure (a backup the integrity Lambda left to the sandbox) it falls back
 * to 2.2x the stored size of an archive, 1.2x of a directory.
 */
export function scratchGiB(backup: Pick<Backup, 'kind' | 'bytes'>, expandedBytes?: number): number {
  const data =
    expandedBytes !== undefined && expandedBytes > 0
      ? expandedBytes
      : backup.bytes * (backup.kind === 'archive' ? 2.2 : 1.2);
  const needed = Math.ceil((data * MARGIN.ratio) / GIB) + MARGIN.fixedGiB;
  return Math.max(FARGATE_EPHEMERAL_GIB.min, needed);
}

/** The message of a backup whose restore cannot fit the sandbox's scratch storage. */
export function tooLargeForSandbox(backupId: string, neededGiB: number, maxGiB: number): string {
  return `the restore of ${backupId} needs about ${neededGiB} GiB of scratch storage (its measured expanded size plus margin), more than the ${maxGiB} GiB a Fargate task can have: it was not restored; restore it on a larger host with the command line (backup-validator restore --source ...)`;
}
