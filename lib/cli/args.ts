import { UsageError } from '../core/errors.ts';
import { optionsOf, usage } from './help.ts';
import { parseOptions, SHARED_OPTIONS, type SharedOptions, sharedValues } from './parse-options.ts';

export const COMMANDS = [
  'discover',
  'integrity',
  'restore',
  'comprehensive',
  'history',
  'report',
  'demo',
  'plan',
] as const;
export type Command = (typeof COMMANDS)[number];

export interface CliOptions extends SharedOptions {
  command: Command;
  sources: string[];
  html?: string;
  /** `report`: a run id, or `latest`. */
  runRef?: string;
  runs: number;
  /** Whether --runs was given (it applies to history only). */
  runsGiven: boolean;
  series?: string;
  dir?: string;
  /** `--concurrency`: backups checked at once; undefined means the default of this machine. */
  concurrency?: number;
}

export const USAGE = usage(COMMANDS);

/** What `--help`, `help` and `help <command>` ask for: the general usage, or one command's. */
export interface HelpRequest {
  help: Command | undefined;
}

export function parseCli(argv: string[]): CliOptions | HelpRequest | 'version' {
  const named = argv.find(isCommand);
  const { values, positionals } = parseOptions(
    argv,
    {
      source: { type: 'string', multiple: true },
      html: { type: 'string' },
      runs: { type: 'string' },
      series: { type: 'string' },
      dir: { type: 'string' },
      concurrency: { type: 'string' },
      version: { type: 'boolean' },
      ...SHARED_OPTIONS,
    },
    named,
    optionsOf(named),
  );
  if (values.version) return 'version';
  const [first, ...rest] = positionals;
  const asksHelp = first === 'help';
  const [command, ...extra] = asksHelp ? rest : positionals;
  if (command !== undefined && !isCommand(command)) {
    throw new UsageError(`unknown command "${command}" (expected one of: ${COMMANDS.join(', ')})`);
  }
  if (values.help || asksHelp) return { help: command };
  if (command === undefined) throw new UsageError('no command given');
  const runRef = command === 'report' ? extra.shift() : undefined;
  if (command === 'report' && runRef === undefined)
    throw new UsageError(
      'report needs a run id or "latest": backup-validator report latest --html report.html',
    );
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}": give sources with --source`);
  const runs = values.runs === undefined ? 10 : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1)
    throw new UsageError(`--runs must be a whole number >= 1, got "${values.runs}"`);
  const options: CliOptions = {
    ...sharedValues(values),
    command,
    sources: (values.source as string[] | undefined) ?? [],
    runs,
    runsGiven: values.runs !== undefined,
    ...(runRef !== undefined ? { runRef } : {}),
  };
  if (values.concurrency !== undefined) {
    const concurrency = Number(values.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new UsageError(`--concurrency must be a whole number >= 1, got "${values.concurrency}"`);
    options.concurrency = concurrency;
  }
  for (const key of ['html', 'series', 'dir'] as const) {
    const value = values[key];
    if (typeof value === 'string') options[key] = value;
  }
  if (options.sources.some((s) => s.trim() === ''))
    throw new UsageError('--source needs a folder or s3:// URL');
  return options;
}

function isCommand(name: string): name is Command {
  return (COMMANDS as readonly string[]).includes(name);
}
