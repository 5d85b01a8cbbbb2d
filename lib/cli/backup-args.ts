/** Options of any command that take a value: the word after one is never the command. */
const VALUE_OPTIONS = new Set([
  '--source',
  '--config',
  '--json',
  '--html',
  '--ledger',
  '--run-store',
  '--runs',
  '--series',
  '--dir',
  '--concurrency',
  '--from',
  '--to',
  '--name',
  '--compress',
  '--verify',
]);

/**
 * The arguments of `backup` (the command word taken out) when the command is `backup`, wherever
 * it stands among the options; undefined for every other command.
 */
export function backupArgv(argv: readonly string[]): string[] | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') return undefined;
    if (arg.startsWith('-')) {
      if (VALUE_OPTIONS.has(arg)) i++;
      continue;
    }
    // `help backup` is `backup --help`.
    if (arg === 'help') return argv.slice(i + 1).includes('backup') ? ['--help'] : undefined;
    return arg === 'backup' ? [...argv.slice(0, i), ...argv.slice(i + 1)] : undefined;
  }
  return undefined;
}
