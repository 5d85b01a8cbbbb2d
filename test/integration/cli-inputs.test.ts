import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger } from '../../lib/adapters/embedded-ledger.ts';
import { packTar } from '../support/archives.ts';
import { runCli } from '../support/cli.ts';
import { stampHoursAgo as stamp } from '../support/time.ts';

let dir: string;
let source: string;
let backupFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bv-cli-inputs-'));
  source = join(dir, 'src');
  await mkdir(source);
  backupFile = join(source, `db-${stamp(1)}.tar`);
  await writeFile(backupFile, await packTar([{ name: 'a.txt', content: 'a' }]));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The runs a ledger folder holds, read directly (opening it through the CLI would create it). */
async function runsIn(ledger: string): Promise<Array<{ status: string; error?: string }>> {
  const opened = await openLedger(ledger, { retentionDays: 30 });
  try {
    return await opened.recentRuns(10);
  } finally {
    await opened.close();
  }
}

/** A usage error: exit 2, one line naming the problem first, nothing on stdout, no ledger made. */
async function expectRefused(args: string[], message: string, name: string): Promise<void> {
  const ledger = join(dir, `ledger-${name}`);
  const result = await runCli([...args, '--ledger', ledger], dir);
  expect(result.code).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr.split('\n')[0]).toBe(`backup-validator: ${message}`);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(existsSync(ledger)).toBe(false);
}

describe('issue 10 (CLI): input checked before anything runs', () => {
  it('issue 10 (CLI): --run-store s3:// without a bucket is exit 2, before the ledger is opened', async () => {
    await expectRefused(
      ['discover', '--source', source, '--run-store', 's3://'],
      '--run-store s3://: not an S3 location; write it as s3://bucket/prefix (bucket: 3-63 of a-z 0-9 . -)',
      'run-store-s3',
    );
  });

  it.each([['constructor'], ['hasOwnProperty']])(
    'issue 10 (CLI): the configuration key defaults.%s is unknown: exit 2 naming it',
    async (key) => {
      const config = join(dir, `config-${key}.json`);
      await writeFile(config, JSON.stringify({ defaults: { [key]: 1 } }));
      await expectRefused(
        ['integrity', '--source', source, '--config', config],
        `${config}: unknown configuration key "defaults.${key}" (expected one of: rpoMinutes, rtoMinutes, integrityThreshold, weights, restore, redundancy, immutability, coverage)`,
        `config-${key}`,
      );
    },
  );

  it.each([
    [
      's3://',
      '--source s3://: not an S3 location; write it as s3://bucket/prefix (bucket: 3-63 of a-z 0-9 . -)',
    ],
    [
      'http://example.com/backups',
      '--source http://example.com/backups: unsupported location; give a folder path or s3://bucket/prefix',
    ],
  ])('issue 10 (CLI): --source %s is exit 2, never a folder of that name', async (url, message) => {
    await expectRefused(['discover', '--source', url], message, `source-${url.replace(/\W/g, '')}`);
    expect(await readdir(dir)).not.toContain('s3:');
  });

  it('issue 10 (CLI): a source that is a file, not a folder, is exit 2', async () => {
    // The name is the one written in beforeAll: a stamp taken again here may fall on another second.
    const file = backupFile;
    await expectRefused(
      ['discover', '--source', file],
      `--source ${file}: not a folder; give the folder that holds the backups`,
      'source-file',
    );
  });

  it('issue 10 (CLI): a usage error (missing --source) creates no ledger folder and records no run', async () => {
    await expectRefused(
      ['integrity'],
      'no source to validate: give --source DIR or --source s3://bucket/prefix',
      'no-source',
    );
  });

  it('issue 10 (CLI): an option of another command is exit 2', async () => {
    await expectRefused(
      ['integrity', '--source', source, '--series', 'db'],
      '--series applies to "history" only, not to "integrity"',
      'series-option',
    );
  });

  it('issue 10 (CLI): a --json path in a missing folder is exit 2 before the run: no run recorded, no table', async () => {
    const ledger = join(dir, 'ledger-json');
    const first = await runCli(['discover', '--source', source, '--ledger', ledger, '--quiet'], dir);
    expect(first.code).toBe(0);
    const json = join(dir, 'no-such-folder', 'report.json');
    const result = await runCli(
      ['integrity', '--source', source, '--ledger', ledger, '--json', json, '--quiet'],
      dir,
    );
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')[0]).toBe(
      `backup-validator: --json ${json}: the folder ${join(dir, 'no-such-folder')} does not exist`,
    );
    expect((await runsIn(ledger)).map((r) => r.status)).toEqual(['PASS']);
  });

  it('issue 10 (CLI): a run that stops after it started is recorded as ERROR with why, never left RUNNING', async () => {
    const ledger = join(dir, 'ledger-stopped');
    const runStore = join(dir, 'blocked-run-store');
    await mkdir(runStore);
    // The run store's "runs/" is a file: the first write of the run, after it was recorded, fails.
    await writeFile(join(runStore, 'runs'), 'not a folder');
    const result = await runCli(
      ['integrity', '--source', source, '--ledger', ledger, '--run-store', runStore, '--quiet'],
      dir,
    );
    expect(result.code).toBe(3);
    expect(result.stdout).toBe('');
    const runs = await runsIn(ledger);
    expect(runs.map((r) => r.status)).toEqual(['ERROR']);
    expect(runs[0]?.error).toContain(join(runStore, 'runs'));
  });

  it('issue 10 (CLI): the default run store lives under the ledger folder, not beside it', async () => {
    const parent = join(dir, 'ledgers');
    await mkdir(parent);
    const ledger = join(parent, 'x');
    const result = await runCli(['discover', '--source', source, '--ledger', ledger, '--quiet'], dir);
    expect(result.code).toBe(0);
    expect(await readdir(parent)).toEqual(['x']);
    expect(await readdir(join(ledger, 'runs', 'reports'))).toHaveLength(1);
  });

  it('issue 10 (CLI): a series pattern of the configuration that matches nothing is a warning naming it', async () => {
    const config = join(dir, 'config-typo.json');
    await writeFile(
      config,
      JSON.stringify({ series: { 'dbb*': { rpoMinutes: 5 }, db: { rpoMinutes: 600 } } }),
    );
    const result = await runCli(
      ['discover', '--source', source, '--config', config, '--ledger', join(dir, 'ledger-typo'), '--quiet'],
      dir,
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(
      'backup-validator: warning: configuration "series.dbb*" matches no series of this run; its policy applies to nothing\n',
    );
  });
});
