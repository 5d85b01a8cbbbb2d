import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { seriesIdOf } from '../core/catalogue.ts';
import type { RunReport } from '../core/model.ts';
import type { CliOptions } from './args.ts';
import type { DemoManifest } from './demo-data.ts';
import { checkInputs } from './inputs.ts';
import { type CliIo, EXIT } from './io.ts';
import { locationsOf } from './locations.ts';
import { runCheckCommand } from './run-command.ts';
import type { RunSetup } from './run-context.ts';

/** The folder the last demo made, so a second demo may replace it and nothing else. */
const DEMO_MARKER = '.backup-validator/demo-folder';

/** Each sample backup must show the findings it was made to show, and healthy ones none. */
export function demoMismatches(manifest: DemoManifest, report: RunReport): string[] {
  const problems: string[] = [];
  const root = manifest.root.replace(/\/+$/, '');
  for (const sample of manifest.backups) {
    const entry = report.backups.find((b) => b.id === `${root}/${sample.path}`);
    if (!entry) {
      problems.push(`${sample.path}: not in the report`);
      continue;
    }
    const reported = new Set([
      ...entry.findings.map((f) => f.code),
      ...report.findings.filter((f) => f.series === seriesIdOf(root, sample.series)).map((f) => f.code),
    ]);
    const missing = sample.expect.filter((code) => !reported.has(code));
    if (missing.length > 0)
      problems.push(
        `${sample.path}: expected ${missing.join(', ')}, got ${[...reported].join(', ') || 'none'}`,
      );
    if (sample.expect.length === 0 && entry.status !== 'PASS')
      problems.push(`${sample.path}: healthy but ${entry.status}`);
  }
  return problems;
}

export async function runDemo(
  options: CliOptions,
  io: CliIo,
  setup: Omit<RunSetup, 'signal' | 'locations'>,
): Promise<number> {
  const { progress } = setup;
  const { makeDemoBackups } = await import('./demo-data.ts');
  const dir = resolve(io.cwd, options.dir ?? 'backup-validator-demo');
  const marker = resolve(io.cwd, DEMO_MARKER);
  const previous = await readFile(marker, 'utf8').catch(() => '');
  if (previous.trim() === dir) await rm(dir, { recursive: true, force: true });
  const manifest = await makeDemoBackups(dir);
  await mkdir(dirname(marker), { recursive: true });
  await writeFile(marker, `${dir}\n`);
  progress.line(
    `demo: made ${manifest.backups.length} sample backups (healthy, damaged and stale) in ${dir}`,
  );
  const json = resolve(io.cwd, options.json ?? join(dirname(marker), 'demo-report.json'));
  // The demo keeps its runs out of the user's own ledger: beside its marker, unless told otherwise.
  const ledger = resolve(io.cwd, options.ledger ?? join(dirname(marker), 'ledger'));
  const html = resolve(io.cwd, options.html ?? join(dirname(marker), 'demo-report.html'));
  // The demo's own run: what `comprehensive --source <dir>` with these would be.
  const run: CliOptions = {
    command: 'comprehensive',
    sources: [dir],
    ledger,
    json,
    html,
    quiet: options.quiet,
    verbose: options.verbose,
    runs: options.runs,
    runsGiven: false,
    ...(options.runStore ? { runStore: options.runStore } : {}),
  };
  const locations = locationsOf(run, io.cwd, io.env);
  await checkInputs(run, io.cwd, locations);
  const { report } = await runCheckCommand(run, io, { ...setup, locations });
  const problems = demoMismatches(manifest, report);
  if (problems.length > 0) {
    io.stdout.write(
      `\ndemo: some sample backups did not get the verdict they were made for:\n${problems.map((p) => `  ${p}`).join('\n')}\n`,
    );
    return EXIT.failed;
  }
  io.stdout.write(
    `\ndemo: as intended. The healthy backups PASS; each damaged or stale one FAILs with the finding it was made to show.\n` +
      `Sample folder: ${dir}\nReport: ${json}\nHTML report (open it in a browser): ${html}\nNext: backup-validator history --ledger ${ledger}\n(from the clone without installing the command: npm start -- history --ledger ${ledger})\n`,
  );
  return EXIT.ok;
}
