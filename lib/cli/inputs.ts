import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Config, seriesMatches } from '../core/config.ts';
import { UsageError } from '../core/errors.ts';
import type { CliOptions } from './args.ts';
import { type Locations, refuseOutputsInSources } from './locations.ts';

/** Commands that validate sources; the others take none. */
const SOURCE_COMMANDS = new Set(['discover', 'integrity', 'restore', 'comprehensive', 'plan']);

/** Options that mean something to one command only: given to another, they are a mistake. */
const ONLY_FOR: Record<string, { command: string; given: (o: CliOptions) => boolean }> = {
  '--series': { command: 'history', given: (o) => o.series !== undefined },
  '--runs': { command: 'history', given: (o) => o.runsGiven === true },
  '--dir': { command: 'demo', given: (o) => o.dir !== undefined },
};

/** S3 bucket names: 3-63 of a-z 0-9 . -, starting and ending with a letter or digit. */
const S3_URL = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(\/.*)?$/;
const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

function checkS3(url: string, option: string): void {
  if (!S3_URL.test(url))
    throw new UsageError(
      `${option} ${url}: not an S3 location; write it as s3://bucket/prefix (bucket: 3-63 of a-z 0-9 . -)`,
      option.slice(2),
    );
}

/** A folder path or s3:// URL as a source or run store; any other scheme is refused, never a folder "s3:". */
function checkLocation(value: string, option: string): void {
  if (value.startsWith('s3://')) {
    checkS3(value, option);
    return;
  }
  const scheme = SCHEME.exec(value);
  if (scheme && scheme[1]?.toLowerCase() !== 'file')
    throw new UsageError(
      `${option} ${value}: unsupported location; give a folder path or s3://bucket/prefix`,
      option.slice(2),
    );
}

async function kindOf(target: string): Promise<'missing' | 'folder' | 'other'> {
  try {
    return (await stat(target)).isDirectory() ? 'folder' : 'other';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw new UsageError(`cannot check ${target}: ${(error as Error).message}`);
  }
}

/** Folders as given, `file://` URLs as their path, made absolute. */
function localPath(value: string, cwd: string): string {
  return path.resolve(cwd, value.startsWith('file://') ? fileURLToPath(value) : value);
}

/**
 * Every input checked before anything runs or is written (ledger folder, run record, report):
 * a mistake is a usage error (exit 2) that names the option and the value.
 */
export async function checkInputs(options: CliOptions, cwd: string, locations: Locations): Promise<void> {
  for (const [option, rule] of Object.entries(ONLY_FOR)) {
    if (rule.given(options) && options.command !== rule.command)
      throw new UsageError(`${option} applies to "${rule.command}" only, not to "${options.command}"`);
  }
  if (!SOURCE_COMMANDS.has(options.command)) {
    if (options.sources.length > 0)
      throw new UsageError(`--source does not apply to "${options.command}"`, 'sources');
  } else if (options.sources.length === 0) {
    throw new UsageError(
      'no source to validate: give --source DIR or --source s3://bucket/prefix',
      'sources',
    );
  }
  for (const source of options.sources) {
    checkLocation(source, '--source');
    if (source.startsWith('s3://')) continue;
    const folder = localPath(source, cwd);
    const kind = await kindOf(folder);
    if (kind === 'missing')
      throw new UsageError(`--source ${folder}: no such folder; check the path`, 'sources');
    if (kind === 'other')
      throw new UsageError(
        `--source ${folder}: not a folder; give the folder that holds the backups`,
        'sources',
      );
  }
  if (options.ledger !== undefined && !options.ledger.startsWith('dynamodb://')) {
    if (SCHEME.test(options.ledger))
      throw new UsageError(`--ledger ${options.ledger}: give a folder or dynamodb://TABLE`, 'ledger');
  }
  if (options.runStore !== undefined) checkLocation(options.runStore, '--run-store');
  for (const [option, at] of [
    ['--ledger', locations.ledger],
    ['--run-store', locations.runStore],
  ] as const) {
    if (at.startsWith('s3://') || at.startsWith('dynamodb://')) continue;
    if ((await kindOf(at)) === 'other')
      throw new UsageError(`${option} ${at}: a file is there; give a folder`, option.slice(2));
  }
  for (const key of ['json', 'html'] as const) {
    const given = options[key];
    if (given === undefined) continue;
    const file = path.resolve(cwd, given);
    if ((await kindOf(path.dirname(file))) !== 'folder')
      throw new UsageError(`--${key} ${file}: the folder ${path.dirname(file)} does not exist`, key);
    if ((await kindOf(file)) === 'folder')
      throw new UsageError(`--${key} ${file}: a folder is there; give a file name`, key);
  }
  if (SOURCE_COMMANDS.has(options.command))
    await refuseOutputsInSources(
      options,
      options.sources.map((s) => (s.startsWith('s3://') ? s : localPath(s, cwd))),
      cwd,
      locations,
    );
}

/** `series` patterns of the configuration that match none of the series found: most likely a typo. */
export function unmatchedSeriesPatterns(config: Config, series: Iterable<string>): string[] {
  const names = [...new Set(series)];
  return Object.keys(config.series).filter((pattern) => !names.some((name) => seriesMatches(pattern, name)));
}
