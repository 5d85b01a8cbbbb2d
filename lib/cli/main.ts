import { resolve } from 'node:path';
import {
  BackupValidatorError,
  InterruptedError,
  LedgerError,
  SandboxError,
  StoreError,
  UsageError,
} from '../core/errors.ts';
import type { RunReport } from '../core/model.ts';
import { COMMANDS, parseCli, USAGE } from './args.ts';
import { backupArgv } from './backup-args.ts';
import { commandHelp } from './help.ts';
import { INTERRUPT_EXIT, Interrupts } from './interrupt.ts';
import { type CliIo, EXIT, exitCodeOf } from './io.ts';

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
    const { checkInputs, unmatchedSeriesPatterns } = await import('./inputs.ts');
    await checkInputs(parsed, io.cwd, locations);
    if (parsed.command === 'history') {
      const { showHistory } = await import('./commands.ts');
      return await showHistory(parsed, io, config, locations);
    }
    if (parsed.command === 'report') {
      const { showReport } = await import('./report-command.ts');
      return await showReport(parsed, io, config, locations);
    }
    if (parsed.command === 'demo') {
      const { runDemo } = await import('./commands.ts');
      return await runDemo(parsed, io, progress, main);
    }
    if (parsed.command === 'plan') {
      const { runPlan } = await import('./plan-command.ts');
      return await runPlan(parsed, io, config, locations);
    }
    const { runCommand } = await import('./commands.ts');
    const interrupts = io.signals ? new Interrupts(io.signals, io.stderr) : undefined;
    let outcome: Awaited<ReturnType<typeof runCommand>>;
    try {
      outcome = await runCommand(parsed, io, {
        config,
        document,
        progress,
        now,
        locations,
        ...(interrupts ? { signal: interrupts.signal } : {}),
      });
    } finally {
      interrupts?.dispose();
    }
    const { report, html } = outcome;
    for (const pattern of unmatchedSeriesPatterns(
      config,
      report.backups.map((b) => b.series),
    ))
      io.stderr.write(
        `backup-validator: warning: configuration "series.${pattern}" matches no series of this run; its policy applies to nothing\n`,
      );
    // The verdict is shown before the report is written: a failed write must not hide it.
    const { printReport } = await import('./print.ts');
    printReport(io, report, now(), {
      inventoryOnly: parsed.command === 'discover',
      weights: config.defaults.weights,
    });
    if (parsed.json)
      await writeReportFile(resolve(io.cwd, parsed.json), report, `${JSON.stringify(report, null, 2)}\n`);
    if (parsed.html && html) {
      const { renderHtmlReport } = await import('../html-report/page.ts');
      await writeReportFile(resolve(io.cwd, parsed.html), report, renderHtmlReport(html));
    }
    return exitCodeOf(report);
  } catch (error) {
    return reportError(
      io,
      error,
      verbose,
      argv.find((a) => (COMMANDS as readonly string[]).includes(a)),
    );
  }
}

async function writeReportFile(file: string, report: RunReport, content: string): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  try {
    await writeFile(file, content);
  } catch (error) {
    throw new BackupValidatorError(
      `the run finished (${report.status}) but its report could not be written to ${file}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

export function reportError(io: CliIo, error: unknown, verbose: boolean, command?: string): number {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof InterruptedError) {
    io.stderr.write(`backup-validator: ${message}\n`);
    return INTERRUPT_EXIT[error.signal];
  }
  if (error instanceof UsageError) {
    const help = command ? `backup-validator help ${command}` : 'backup-validator --help';
    io.stderr.write(`backup-validator: ${message}\nRun "${help}" for usage.\n`);
    return EXIT.usage;
  }
  const known =
    error instanceof StoreError ||
    error instanceof LedgerError ||
    error instanceof SandboxError ||
    error instanceof BackupValidatorError;
  io.stderr.write(`backup-validator: ${known ? '' : 'unexpected error: '}${message}\n`);
  if (verbose && error instanceof Error) io.stderr.write(`${error.stack ?? ''}\n`);
  else if (!known) io.stderr.write('Run again with --verbose for the stack trace.\n');
  return EXIT.crashed;
}
