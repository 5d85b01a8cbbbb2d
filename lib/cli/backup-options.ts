/** The `backup` command's line: its usage, options, and the job they ask for (a configured one, overridden). */
import type { BackupCompression } from '../core/backup/compress.ts';
import {
  type BackupJob,
  type BackupVerify,
  checkCompression,
  checkSeriesName,
  checkVerify,
} from '../core/backup/jobs.ts';
import type { Config } from '../core/config.ts';
import { UsageError } from '../core/errors.ts';
import { parseOptions, SHARED_OPTIONS, type SharedOptions, sharedValues } from './parse-options.ts';

export const BACKUP_USAGE = `Usage: backup-validator backup [JOB] --from <what> --to <dir|s3://bucket/prefix> --series NAME [options]

Writes one backup (tar, pax format, compressed) named <series>-<UTC time>.tar.gz (or .tar.zst) with
SHA256SUMS first, metadata.json and a .sha256 sidecar, then validates it at once.

  JOB                                 a job of the configuration's "backups" (options given here override it)
  --from <dir>                        a folder tree (repeatable)
  --from docker-volume:NAME           a Docker volume, found through the engine (DOCKER_HOST honoured)
  --from 'command:CMD'                the standard output of a shell command (repeatable)
  --name <file>                       the name in the archive of each command's output, in order
  --to <dir|s3://bucket/prefix>       where the backup goes (nothing else is written there)
  --series <name>                     the series (default: the job's name)
  --compress gzip|zstd                default gzip
  --verify integrity|restore          default integrity; restore also restores it in the sandbox
  --config, --json, --ledger, --run-store, --quiet, --verbose   as for the other commands

Exit codes: 0 written and PASS or WARN; 1 the backup FAILs validation, or could not be made from its
sources (a command failed or wrote nothing, a folder vanished or changed, no file content);
2 bad usage or configuration; 3 the target, the Docker engine or the ledger could not be reached.`;

export interface BackupOptions extends SharedOptions {
  job?: string;
  from: string[];
  names: string[];
  to?: string;
  series?: string;
  compress?: BackupCompression;
  verify?: BackupVerify;
}

const BACKUP_OPTIONS = {
  from: { type: 'string', multiple: true },
  name: { type: 'string', multiple: true },
  to: { type: 'string' },
  series: { type: 'string' },
  compress: { type: 'string' },
  verify: { type: 'string' },
  ...SHARED_OPTIONS,
} as const;

export function parseBackupArgs(argv: string[]): BackupOptions | 'help' {
  const { values, positionals } = parseOptions(
    argv,
    BACKUP_OPTIONS,
    'backup',
    Object.keys(BACKUP_OPTIONS).map((name) => `--${name}`),
  );
  if (values.help) return 'help';
  if (positionals.length > 1)
    throw new UsageError(`unexpected argument "${positionals[1]}": one job at most`);
  const options: BackupOptions = {
    ...sharedValues(values),
    from: (values.from as string[] | undefined) ?? [],
    names: (values.name as string[] | undefined) ?? [],
  };
  if (positionals[0] !== undefined) options.job = positionals[0];
  for (const key of ['to', 'series'] as const) {
    const value = values[key];
    if (typeof value === 'string') options[key] = value;
  }
  if (values.compress !== undefined) options.compress = checkCompression(values.compress, '--compress');
  if (values.verify !== undefined) options.verify = checkVerify(values.verify, '--verify');
  return options;
}

/** The job to run: the configuration's, with what the command line gives on top. */
export function resolveJob(
  options: BackupOptions,
  config: Config,
): Required<Omit<BackupJob, 'names'>> & { names: string[] } {
  let job: BackupJob | undefined;
  if (options.job !== undefined) {
    job = config.backups?.[options.job];
    if (!job) {
      const known = Object.keys(config.backups ?? {});
      throw new UsageError(
        `no backup job "${options.job}" in the configuration${known.length > 0 ? ` (jobs: ${known.join(', ')})` : options.config ? '' : ': give --config with a "backups" section'}`,
        'backups',
      );
    }
  }
  const from = options.from.length > 0 ? options.from : (job?.from ?? []);
  if (from.length === 0)
    throw new UsageError('backup needs --from (a folder, docker-volume:NAME or command:CMD)', 'from');
  const to = options.to ?? job?.to;
  if (!to) throw new UsageError('backup needs --to (a folder or s3://bucket/prefix)', 'to');
  const series = options.series ?? job?.series ?? options.job;
  if (series === undefined) throw new UsageError('backup needs --series NAME (or a job name)', 'series');
  return {
    from,
    to,
    series: checkSeriesName(series, '--series'),
    compress: options.compress ?? job?.compress ?? 'gzip',
    verify: options.verify ?? job?.verify ?? 'integrity',
    names: options.names.length > 0 ? options.names : (job?.names ?? []),
  };
}
