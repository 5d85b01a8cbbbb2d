import { invalidConfig, UsageError } from '../errors.ts';
import type { BackupCompression } from './compress.ts';

/** A named backup job of the configuration: `backup-validator backup NAME` runs it. */
export interface BackupJob {
  from: string[];
  to: string;
  /** Default: the job's name. */
  series?: string;
  compress?: BackupCompression;
  /** Names inside the archive of the `command:` sources, in order. */
  names?: string[];
  verify?: BackupVerify;
}

export type BackupVerify = 'integrity' | 'restore';

const JOB_KEYS = ['from', 'to', 'series', 'compress', 'names', 'verify'];

/** A series name the catalogue reads back as itself: no folder, no timestamp, nothing hidden. */
export function checkSeriesName(series: string, where: string): string {
  if (
    !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(series) ||
    /\d{8}/.test(series) ||
    /\d{4}-\d{2}-\d{2}/.test(series)
  )
    throw new UsageError(
      `${where} "${series}" is not a series name: letters, digits, ".", "_" and "-", starting with a letter or digit, with no date in it (the backup's name adds the time)`,
      where,
    );
  return series;
}

export function checkCompression(value: unknown, where: string): BackupCompression {
  if (value !== 'gzip' && value !== 'zstd')
    throw new UsageError(`${where} must be "gzip" or "zstd", got ${JSON.stringify(value)}`, where);
  return value;
}

export function checkVerify(value: unknown, where: string): BackupVerify {
  if (value !== 'integrity' && value !== 'restore')
    throw new UsageError(`${where} must be "integrity" or "restore", got ${JSON.stringify(value)}`, where);
  return value;
}

function stringList(value: unknown, key: string): string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || list.some((v) => typeof v !== 'string' || v.trim() === ''))
    throw invalidConfig(key, 'a non-empty list of strings');
  return [...list];
}

/** The `backups` key of the configuration document. */
export function parseBackupJobs(value: unknown): Record<string, BackupJob> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidConfig('backups', 'an object of named jobs');
  const jobs: Record<string, BackupJob> = Object.create(null);
  for (const [name, raw] of Object.entries(value)) {
    const at = `backups.${name}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalidConfig(at, 'an object');
    const job = raw as Record<string, unknown>;
    for (const key of Object.keys(job))
      if (!JOB_KEYS.includes(key))
        throw new UsageError(
          `unknown configuration key "${at}.${key}" (expected one of: ${JOB_KEYS.join(', ')})`,
          `${at}.${key}`,
        );
    if (typeof job.to !== 'string' || job.to.trim() === '')
      throw invalidConfig(`${at}.to`, 'a folder or s3:// URL');
    const parsed: BackupJob = { from: stringList(job.from, `${at}.from`), to: job.to };
    if (job.series !== undefined) {
      if (typeof job.series !== 'string') throw invalidConfig(`${at}.series`, 'a string');
      parsed.series = checkSeriesName(job.series, `configuration key "${at}.series"`);
    }
    if (job.compress !== undefined) parsed.compress = checkCompression(job.compress, `${at}.compress`);
    if (job.names !== undefined) parsed.names = stringList(job.names, `${at}.names`);
    if (job.verify !== undefined) parsed.verify = checkVerify(job.verify, `${at}.verify`);
    jobs[name] = parsed;
  }
  return jobs;
}
