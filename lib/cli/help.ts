/** Every option: its value's name and what it does, said once for all the commands that take it. */
export const OPTION_HELP = {
  source: { value: '<dir|s3://bucket/prefix>', text: 'where backups live (repeatable)' },
  config: { value: '<file>', text: 'policy document (JSON; see docs/contract.md)' },
  json: { value: '<file>', text: 'write the report as JSON to this file' },
  html: { value: '<file>', text: 'write the report as one self-contained HTML page' },
  ledger: {
    value: '<dir|dynamodb://table>',
    text: 'run history (default $XDG_STATE_HOME/backup-validator/ledger,\nelse ~/.local/state/backup-validator/ledger)',
  },
  'run-store': { value: '<dir|s3://bucket>', text: "run artifacts (default: the ledger folder's runs/)" },
  runs: { value: '<n>', text: 'history: how many recent runs (default 10)' },
  series: { value: '<id>', text: 'history: one series only, its id as history prints it' },
  dir: { value: '<dir>', text: 'demo: where to make the sample (default ./backup-validator-demo)' },
  concurrency: {
    value: '<n>',
    text: 'backups the integrity stage reads at once (default: the cores, at most 4)',
  },
  quiet: { value: '', text: 'no progress on stderr' },
  verbose: { value: '', text: 'stack traces on errors' },
  help: { value: '', text: 'this text' },
  version: { value: '', text: 'the version' },
} as const;

export type OptionName = keyof typeof OPTION_HELP;

const SHORT: Partial<Record<OptionName, string>> = { help: '-h', quiet: '-q', verbose: '-v' };

interface CommandHelp {
  /** One line for the list of commands. */
  brief: string;
  summary: string;
  /** What follows `backup-validator <command>` in the usage line. */
  usage: string;
  options: OptionName[];
  example: string;
}

const RUN_OPTIONS: OptionName[] = [
  'source',
  'config',
  'json',
  'html',
  'ledger',
  'run-store',
  'quiet',
  'verbose',
  'help',
];

/** One entry a command: `help <command>` and `<command> --help` print it. */
export const COMMAND_HELP: Record<string, CommandHelp | undefined> = {
  discover: {
    brief: 'catalogue backups and series; print the inventory',
    summary: 'catalogue backups and series; print the inventory (nothing is read or restored)',
    usage: '--source <dir|s3://bucket/prefix> [options]',
    options: RUN_OPTIONS,
    example: 'backup-validator discover --source /srv/backups --source s3://my-bucket/db',
  },
  integrity: {
    brief: 'discover, then checksum, archive and access checks',
    summary:
      'discover, then read every backup once: SHA-256 of the stored bytes, decompression, tar parsing, a SHA-256 per member, against every reference checksum',
    usage: '--source <dir|s3://bucket/prefix> [options]',
    options: [...RUN_OPTIONS, 'concurrency'],
    example: 'backup-validator integrity --source /srv/backups --json report.json',
  },
  restore: {
    brief: 'discover, then restore tests in a sandbox',
    summary:
      "discover, then restore the selected backups in a sandbox: every file checked as written and read back, the probes, the time against the series' RTO",
    usage: '--source <dir|s3://bucket/prefix> [options]',
    options: RUN_OPTIONS,
    example: 'backup-validator restore --source s3://my-bucket/db --config policy.json',
  },
  comprehensive: {
    brief: 'discover, integrity, restore, redundancy and compliance, then the report',
    summary: 'the whole pipeline: discover, integrity, restore, redundancy and compliance, then the report',
    usage: '--source <dir|s3://bucket/prefix> [options]',
    options: [...RUN_OPTIONS, 'concurrency'],
    example: 'backup-validator comprehensive --source /srv/backups --config policy.json --html report.html',
  },
  history: {
    brief: 'past runs and per-series trends from the ledger',
    summary: 'recent runs and, per series, the trend of size, integrity score and restore time',
    usage: '[options]',
    options: ['runs', 'series', 'config', 'json', 'html', 'ledger', 'run-store', 'quiet', 'verbose', 'help'],
    example: 'backup-validator history --runs 20 --html history.html',
  },
  report: {
    brief: "a past run's report again (text, and --html/--json)",
    summary: "a past run's report again, from the ledger and the run store; exits with that run's verdict",
    usage: 'RUN_ID|latest [options]',
    options: ['config', 'json', 'html', 'ledger', 'run-store', 'quiet', 'verbose', 'help'],
    example: 'backup-validator report latest --html report.html',
  },
  demo: {
    brief: 'make a sample backup folder and run comprehensive on it',
    summary: 'make a sample backup folder (healthy, damaged and stale backups) and run comprehensive on it',
    usage: '[options]',
    options: ['dir', 'json', 'html', 'ledger', 'run-store', 'quiet', 'verbose', 'help'],
    example: 'backup-validator demo --dir /tmp/bv-demo',
  },
  plan: {
    brief: 'estimate a run and a month of runs from the listing alone',
    summary:
      'list the sources (reading no backup) and say what the next run reads under the coverage budget, whether the coverage window is reachable, and what a run and a month of runs cost (docs/cost.md)',
    usage: '--source <dir|s3://bucket/prefix> [options]',
    options: ['source', 'config', 'json', 'ledger', 'quiet', 'verbose', 'help'],
    example: 'backup-validator plan --source s3://my-bucket/db --config policy.json',
  },
};

const EXIT_CODES = `Exit codes: 0 every backup PASS or WARN; 1 at least one FAIL; 2 bad usage or configuration;
3 the run could not finish (store or ledger unreachable, crash).`;

function optionLines(names: readonly OptionName[]): string {
  const cells = names.map((name) => {
    const { value, text } = OPTION_HELP[name];
    const short = SHORT[name];
    return [`${short ? `${short}, ` : ''}--${name}${value ? ` ${value}` : ''}`, text] as const;
  });
  const width = Math.max(...cells.map(([flag]) => flag.length));
  return cells
    .map(([flag, text]) => `  ${flag.padEnd(width)}  ${text.replaceAll('\n', `\n  ${' '.repeat(width)}  `)}`)
    .join('\n');
}

/** The valid options of a command (all of them when it is not known). */
export function optionsOf(command: string | undefined): string[] {
  const help = command === undefined ? undefined : COMMAND_HELP[command];
  const names = help ? help.options : (Object.keys(OPTION_HELP) as OptionName[]);
  return names.map((n) => `--${n}`);
}

export function usage(commands: readonly string[]): string {
  const width = Math.max(...commands.map((c) => c.length));
  const list = [
    ...commands.map((c) => `  ${c.padEnd(width)}  ${COMMAND_HELP[c]?.brief ?? ''}`),
    // `backup` has options of its own (backup-command.ts): `backup --help` lists them.
    `  ${'backup'.padEnd(width)}  write a backup (folders, Docker volumes, command output) and validate it at once`,
  ].join('\n');
  return `Usage: backup-validator <command> [options]

Commands:
${list}

Options:
${optionLines(Object.keys(OPTION_HELP) as OptionName[])}

Run "backup-validator help <command>" (or "<command> --help") for a command's options and an example.

${EXIT_CODES}`;
}

/** `help <command>`: what it does, its options, one example. */
export function commandHelp(command: string): string | undefined {
  const help = COMMAND_HELP[command];
  if (!help) return undefined;
  return `Usage: backup-validator ${command} ${help.usage}

${help.summary[0]?.toUpperCase()}${help.summary.slice(1)}.

Options:
${optionLines(help.options)}

Example:
  ${help.example}

${EXIT_CODES}`;
}
