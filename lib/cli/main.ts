import { COMMANDS, parseCli, USAGE } from './args.ts';
import { backupArgv } from './backup-args.ts';
import { commandHelp } from './help.ts';
import { type CliIo, EXIT, reportError } from './io.ts';

export { type CliIo, EXIT, exitCodeOf, newRunId } from './io.ts';

/**
 * The command line. Only what a command uses is loaded (`import()` below, each its own chunk in
 * the compiled CLI): `--help` reads no more than the argument parser.
 */
export async function main(argv: string[], io: CliIo): Promise<number> {
  let verbose = argv.includes('--verbose') || argv.includes('-v');
  const backupArgs = backupArgv(argv);
  if (backupArgs) {
    const { backupMain } = await import('./backup-command.ts');
    return backupMain(backupArgs, io);
  }
  try {
    const parsed = parseCli(argv);
    if (parsed === 'version') {
      io.stdout.write('backup-validator 0.1.0\n');
      return EXIT.ok;
    }
    if ('help' in parsed) {
      io.stdout.write(`${(parsed.help && commandHelp(parsed.help)) ?? USAGE}\n`);
      return EXIT.ok;
    }
    verbose = parsed.verbose;
    const { loadConfigFile } = await import('./config-file.ts');
    const { config, document } = await loadConfigFile(parsed.config, io.cwd);
    const now = io.now ?? (() => new Date());
    const { Progress } = await import('./progress.ts');
    const progress = new Progress({ stream: io.stderr, quiet: parsed.quiet, env: io.env });
    const { locationsOf } = await import('./locations.ts');
    const locations = locationsOf(parsed, io.cwd, io.env);
    const { checkInputs } = await import('./inputs.ts');
    await checkInputs(parsed, io.cwd, locations);
    if (parsed.command === 'history') {
      const { showHistory } = await import('./history-command.ts');
      return await showHistory(parsed, io, config, locations);
    }
    if (parsed.command === 'report') {
      const { showReport } = await import('./report-command.ts');
      return await showReport(parsed, io, config, locations);
    }
    if (parsed.command === 'demo') {
      const { runDemo } = await import('./demo-command.ts');
      return await runDemo(parsed, io, { config, document, progress, now });
    }
    if (parsed.command === 'plan') {
      const { runPlan } = await import('./plan-command.ts');
      return await runPlan(parsed, io, config, locations);
    }
    const { runCheckCommand } = await import('./run-command.ts');
    return (await runCheckCommand(parsed, io, { config, document, progress, now, locations })).code;
  } catch (error) {
    return reportError(
      io,
      error,
      verbose,
      argv.find((a) => (COMMANDS as readonly string[]).includes(a)),
    );
  }
}
