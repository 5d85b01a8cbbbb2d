import { parseArgs } from 'node:util';
import { UsageError } from '../core/errors.ts';
import { optionsOf, usage } from './help.ts';

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

export interface CliOptions {
  command: Command;
  sources: string[];
  config?: string;
  json?: string;
  html?: string;
  /** `report`: a run id, or `latest`. */
  runRef?: string;
  /** As given; the default is resolved by locations.ts. */
  ledger?: string;
  runStore?: string;
  quiet: boolean;
  verbose: boolean;
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
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        source: { type: 'string', multiple: true },
        config: { type: 'string' },
        json: { type: 'string' },
        html: { type: 'string' },
        ledger: { type: 'string' },
        'run-store': { type: 'string' },
        quiet: { type: 'boolean', short: 'q' },
        verbose: { type: 'boolean', short: 'v' },
        runs: { type: 'string' },
        series: { type: 'string' },
        dir: { type: 'string' },
        concurrency: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (error) {
    throw optionError(error as Error & { code?: string }, argv);
  }
  const { values, positionals } = parsed;
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
    command,
    sources: (values.source as string[] | undefined) ?? [],
    quiet: Boolean(values.quiet),
    verbose: Boolean(values.verbose),
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
  for (const key of ['config', 'json', 'html', 'ledger', 'series', 'dir'] as const) {
    const value = values[key];
    if (typeof value === 'string') options[key] = value;
  }
  if (typeof values['run-store'] === 'string') options.runStore = values['run-store'];
  if (options.sources.some((s) => s.trim() === ''))
    throw new UsageError('--source needs a folder or s3:// URL');
  return options;
}

function isCommand(name: string): name is Command {
  return (COMMANDS as readonly string[]).includes(name);
}

/** parseArgs' own messages talk of positional arguments: say instead which options the command takes. */
function optionError(error: Error & { code?: string }, argv: string[]): UsageError {
  const command = argv.find(isCommand);
  const unknown = /^Unknown option '([^']+)'/.exec(error.message)?.[1];
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown !== undefined) {
    const valid = optionsOf(command);
    const near = closest(unknown, valid);
    return new UsageError(
      `unknown option ${unknown}${command ? ` for ${command}` : ''}${near ? ` (did you mean ${near}?)` : ''}; ` +
        `the options${command ? ` of ${command}` : ''} are: ${valid.join(', ')}`,
      undefined,
      { cause: error },
    );
  }
  return new UsageError(error.message, undefined, { cause: error });
}

/** The valid option nearest to a mistyped one (at most two edits away), if any. */
function closest(given: string, valid: readonly string[]): string | undefined {
  let best: { option: string; distance: number } | undefined;
  for (const option of valid) {
    const distance = editDistance(given, option);
    if (distance <= 2 && (best === undefined || distance < best.distance)) best = { option, distance };
  }
  return best?.option;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    previous = current;
  }
  return previous[b.length] ?? 0;
}
