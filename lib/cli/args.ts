import { parseArgs } from 'node:util';
import { UsageError } from '../core/errors.ts';

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
}

export const USAGE = `Usage: backup-validator <command> [options]

Commands:
  discover        catalogue backups and series; print the inventory
  integrity       discover, then checksum/archive/access checks
  restore         discover, then restore tests in a sandbox
  comprehensive   discover, integrity, restore, redundancy and compliance, then the report
  history         past runs and per-series trends from the ledger
  report RUN|latest  a past run's report again (text, and --html/--json)
  demo            make a sample backup folder and run comprehensive on it
  plan            estimate a run and a month of runs from the listing alone: what is read
                  under the coverage budget, whether the window is reachable, the cost

Options:
  --source <dir|s3://bucket/prefix>   where backups live (repeatable)
  --config <file>                     configuration document (JSON, see docs/contract.md)
  --json <file>                       write the run report (JSON) to this file
  --html <file>                       write the run report as a self-contained HTML page
  --ledger <dir|dynamodb://table>     run history (default $XDG_STATE_HOME/backup-validator/ledger,
                                      else ~/.local/state/backup-validator/ledger)
  --run-store <dir|s3://bucket>       run artifacts (default: the ledger folder's runs/)
  --quiet                             no progress on stderr
  --verbose                           stack traces on errors
  --runs <n>                          history: how many recent runs (default 10)
  --series <name>                     history: one series only
  --dir <dir>                         demo: where to make the sample (default ./backup-validator-demo)
  -h, --help                          this text
  --version                           the version

Exit codes: 0 every backup PASS or WARN; 1 at least one FAIL; 2 bad usage or configuration;
3 the run could not finish (store or ledger unreachable, crash).`;

export function parseCli(argv: string[]): CliOptions | 'help' | 'version' {
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
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message, undefined, { cause: error });
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (values.version) return 'version';
  const [command, ...extra] = positionals;
  if (command === undefined) throw new UsageError('no command given');
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new UsageError(`unknown command "${command}" (expected one of: ${COMMANDS.join(', ')})`);
  }
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
    command: command as Command,
    sources: (values.source as string[] | undefined) ?? [],
    quiet: Boolean(values.quiet),
    verbose: Boolean(values.verbose),
    runs,
    runsGiven: values.runs !== undefined,
    ...(runRef !== undefined ? { runRef } : {}),
  };
  for (const key of ['config', 'json', 'html', 'ledger', 'series', 'dir'] as const) {
    const value = values[key];
    if (typeof value === 'string') options[key] = value;
  }
  if (typeof values['run-store'] === 'string') options.runStore = values['run-store'];
  if (options.sources.some((s) => s.trim() === ''))
    throw new UsageError('--source needs a folder or s3:// URL');
  return options;
}
