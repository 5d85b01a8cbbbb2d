import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/model.ts';
import { packTar } from '../support/archives.ts';
import { runCli } from '../support/cli.ts';
import { stampHoursAgo as stamp } from '../support/time.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bv-cli-report-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('backup-validator report RUN_ID|latest', () => {
  it('issue 14: renders a past run again from the ledger and run store, as text, JSON and HTML, with its exit code', async () => {
    const source = join(dir, 'backups');
    await mkdir(source, { recursive: true });
    await writeFile(
      join(source, `db-${stamp(1)}.tar`),
      await packTar([{ name: 'db.sql', content: 'SELECT 1;' }]),
    );
    await writeFile(join(source, `web-${stamp(1)}.tar.gz`), Buffer.from('not a gzip stream at all'));
    const ledger = join(dir, 'ledger');
    const first = join(dir, 'first.json');
    const run = await runCli(
      ['integrity', '--source', source, '--ledger', ledger, '--json', first, '--quiet'],
      dir,
    );
    expect(run.code).toBe(1);
    const original = JSON.parse(await readFile(first, 'utf8')) as RunReport;

    const latest = await runCli(
      [
        'report',
        'latest',
        '--ledger',
        ledger,
        '--html',
        join(dir, 'again.html'),
        '--json',
        join(dir, 'again.json'),
      ],
      dir,
    );
    expect(latest.code).toBe(1);
    expect(latest.stdout).toContain(`run ${original.runId}`);
    expect(latest.stdout).toMatch(/ARCHIVE_CORRUPT/);
    expect(JSON.parse(await readFile(join(dir, 'again.json'), 'utf8'))).toEqual(original);
    const page = await readFile(join(dir, 'again.html'), 'utf8');
    expect(page).toContain(`<code>${original.runId}</code>`);
    expect(page).toContain('ARCHIVE_CORRUPT');

    const byId = await runCli(['report', original.runId, '--ledger', ledger], dir);
    expect(byId.code).toBe(1);
    expect(byId.stdout).toBe(latest.stdout);

    const history = await runCli(['history', '--ledger', ledger, '--html', join(dir, 'history.html')], dir);
    expect(history.code).toBe(0);
    const trends = await readFile(join(dir, 'history.html'), 'utf8');
    expect(trends).toContain(`<code>${original.runId}</code>`);
    for (const series of new Set(original.backups.map((b) => b.series))) {
      expect(trends).toContain(`<section class="series"><h3>${series} `);
    }
    expect(trends.match(/<svg role="img"/g)?.length).toBeGreaterThanOrEqual(2);
    expect(trends).not.toMatch(/<script|src="|href="/);
  });

  it('issue 14: an unknown run or a ledger with no finished run is bad usage, saying what to do', async () => {
    const ledger = join(dir, 'empty-ledger');
    const none = await runCli(['report', 'latest', '--ledger', ledger], dir);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('holds no finished run yet');
    const unknown = await runCli(['report', 'run-that-never-was', '--ledger', ledger], dir);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('run run-that-never-was has no report in the run store');
    const missing = await runCli(['report', '--ledger', ledger], dir);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('report needs a run id or "latest"');
  });
});
