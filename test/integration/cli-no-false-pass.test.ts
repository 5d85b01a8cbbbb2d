import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/model.ts';
import { packTar } from '../support/archives.ts';
import { runCli } from '../support/cli.ts';
import { stampHoursAgo as stamp } from '../support/time.ts';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bv-cli-nfp-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function folderWith(name: string, files: Record<string, string | Buffer>): Promise<string> {
  const root = join(dir, name);
  await mkdir(root, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

/** A folder backup with a manifest that matches: PASS when integrity reads it. */
function verifiedFolder(prefix: string, content: string): Record<string, string> {
  return { [`${prefix}/data.bin`]: content, [`${prefix}/SHA256SUMS`]: `${sha(content)}  data.bin\n` };
}

/** Every file below a folder, relative, sorted. */
async function filesUnder(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).map(String).sort();
}

/** The table row whose first cells match, from a results matrix (series may show with their source's folder). */
function rowOf(stdout: string, start: RegExp): string | undefined {
  return stdout.split('\n').find((line) => start.test(line));
}

function addsUp(c: RunReport['counts']): boolean {
  return c.pass + c.warn + c.fail + c.skipped === c.backups + c.seriesRows;
}

describe('issue 9.6: the tool never catalogues its own files', () => {
  it('issue 9.6: run from inside a source, the default ledger and run store go to the per-user state folder, and later runs see no new series', async () => {
    const name = `db-${stamp(1)}.tar`;
    const source = await folderWith('self', { [name]: await packTar([{ name: 'a.txt', content: 'a' }]) });
    const state = join(dir, 'state-self');
    const env = { XDG_STATE_HOME: state };
    const first = await runCli(['integrity', '--source', '.', '--quiet'], source, env);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(await filesUnder(source)).toEqual([name]);
    expect(existsSync(join(state, 'backup-validator', 'ledger'))).toBe(true);
    expect(await readdir(join(state, 'backup-validator', 'ledger', 'runs', 'reports'))).toHaveLength(1);

    const second = await runCli(['integrity', '--source', '.', '--quiet'], source, env);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/: 1 backup\(s\) in 1 series: /);
    expect(second.stdout).not.toContain('RPO_EXCEEDED');
    expect(await filesUnder(source)).toEqual([name]);
  });

  it('issue 9.6: a .backup-validator folder left in a source by an older version is never listed', async () => {
    const backup = `backups/${stamp(1)}`;
    const source = await folderWith('leftover', {
      ...verifiedFolder(backup, 'payload'),
      '.backup-validator/ledger/000003.log': 'leveldb',
      [`.backup-validator/runs/${stamp(2)}-abc/report.json`]: '{}',
      '.backup-validator/demo-report.json': '{}',
      [`nested/.backup-validator/runs/${stamp(3)}-def/shard-0.json`]: '[]',
    });
    const json = join(dir, 'leftover.json');
    const result = await runCli(
      ['discover', '--source', source, '--ledger', join(dir, 'leftover-ledger'), '--json', json],
      dir,
    );
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain('.backup-validator');
    const report = JSON.parse(await readFile(json, 'utf8')) as RunReport;
    expect(report.backups.map((b) => b.id)).toEqual([`${source}/${backup}/`]);
  });

  it.each([
    ['--ledger', 'state/ledger', 'ledger'],
    ['--run-store', 'runs', 'run-store'],
    ['--json', 'report.json', 'json'],
    ['--ledger', '.', 'ledger'],
  ])(
    'issue 9.6: an explicit %s inside a folder source is refused with exit 2, nothing written',
    async (option, path, key) => {
      const source = await folderWith(
        `inside-${key}-${path.replace(/\W/g, '')}`,
        verifiedFolder(`b/${stamp(1)}`, 'x'),
      );
      const before = await filesUnder(source);
      const outsideLedger = join(dir, `outside-ledger-${key}-${path.replace(/\W/g, '')}`);
      const args = ['integrity', '--source', source, option, join(source, path)];
      if (option !== '--ledger') args.push('--ledger', outsideLedger);
      const result = await runCli(args, dir);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      const [first] = result.stderr.split('\n');
      expect(first).toContain(`${option} ${join(source, path).replace(/\/\.$/, '')}`);
      expect(first).toContain(`lies inside the source ${source}`);
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(await filesUnder(source)).toEqual(before);
      expect(existsSync(outsideLedger)).toBe(false);
    },
  );

  it('issue 9.6: a run store under an S3 source prefix is refused too, before S3 is contacted', async () => {
    const ledger = join(dir, 'ledger-s3-inside');
    const result = await runCli(
      [
        'integrity',
        '--source',
        's3://vault/backups',
        '--run-store',
        's3://vault/backups/runs',
        '--ledger',
        ledger,
      ],
      dir,
      { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' },
    );
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')[0]).toBe(
      'backup-validator: --run-store s3://vault/backups/runs lies inside the source s3://vault/backups: its files would be catalogued as backups; give a path outside the source',
    );
    expect(existsSync(ledger)).toBe(false);
  });

  it('issue 9.6: a ledger reached through a symbolic link into the source is refused too', async () => {
    const source = await folderWith('linked', verifiedFolder(`b/${stamp(1)}`, 'x'));
    const before = await filesUnder(source);
    const link = join(dir, 'link-to-linked');
    await symlink(source, link);
    const result = await runCli(['discover', '--source', source, '--ledger', join(link, 'ledger')], dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`lies inside the source ${source}`);
    expect(await filesUnder(source)).toEqual(before);
  });

  it('issue 9.6: when the default state folder lies inside the source, the refusal says to pass --ledger', async () => {
    const source = await folderWith('home', verifiedFolder(`b/${stamp(1)}`, 'x'));
    const before = await filesUnder(source);
    const result = await runCli(['integrity', '--source', source], dir, { XDG_STATE_HOME: '', HOME: source });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `the default ledger ${join(source, '.local/state/backup-validator/ledger')} lies inside the source ${source}: give --ledger`,
    );
    expect(await filesUnder(source)).toEqual(before);
  });
});

describe('issue 9.10: a failure inside a nightly folder fails the nightly', () => {
  it('issue 9.10: a nightly folder holding a 0-byte memories.sql.gz is FAIL, and the matrix names the component', async () => {
    const nightly = `backups/${stamp(2)}`;
    const notes = 'notes of the night';
    const source = await folderWith('nightly', {
      [`${nightly}/notes.txt`]: notes,
      [`${nightly}/memories.sql.gz`]: '',
    });
    const json = join(dir, 'nightly.json');
    const result = await runCli(
      ['integrity', '--source', source, '--ledger', join(dir, 'nightly-ledger'), '--json', json, '--quiet'],
      dir,
    );
    expect(result.code).toBe(1);
    expect(result.stdout.split('\n')[0]).toMatch(/\bNESTED\b/);
    expect(rowOf(result.stdout, /^(?:\S+\/)?backups\s+\d{8}_\d{6}\/\s+dir\b/)).toMatch(
      /\bFAIL memories\.sql\.gz\b.*\bFAIL$/,
    );
    const report = JSON.parse(await readFile(json, 'utf8')) as RunReport;
    const folder = report.backups.find((b) => b.kind === 'directory');
    const archive = report.backups.find((b) => b.kind === 'archive');
    expect(archive?.id).toBe(`${source}/${nightly}/memories.sql.gz`);
    expect(archive?.status).toBe('FAIL');
    expect(archive?.parentId).toBe(folder?.id);
    expect(folder?.status).toBe('FAIL');
    expect(folder?.nested).toEqual([{ id: archive?.id, status: 'FAIL' }]);
    expect(report.counts).toMatchObject({ backups: 2, pass: 0, fail: 2, skipped: 0 });
  });
});

describe('issue 9.11: counts and rows never read as success', () => {
  it('issue 9.11: discover checks nothing: every backup is SKIPPED, none counted as pass', async () => {
    const source = await folderWith('discover-only', {
      ...verifiedFolder(`backups/${stamp(1)}`, 'one'),
      ...verifiedFolder(`backups/${stamp(2)}`, 'two'),
      [`db-${stamp(1)}.tar`]: await packTar([{ name: 'a', content: 'a' }]),
    });
    const json = join(dir, 'discover-only.json');
    const result = await runCli(
      ['discover', '--source', source, '--ledger', join(dir, 'discover-only-ledger'), '--json', json],
      dir,
    );
    expect(result.code).toBe(0);
    const rows = result.stdout.split('\n').filter((l) => l.includes(source));
    expect(rows).toHaveLength(3);
    for (const row of rows) expect(row).toMatch(/\bSKIPPED$/);
    expect(result.stdout).toContain(
      ': 3 backup(s) in 2 series: 0 pass, 0 warn, 0 fail, 3 skipped (not checked);',
    );
    const report = JSON.parse(await readFile(json, 'utf8')) as RunReport;
    expect(report.backups.map((b) => b.status)).toEqual(['SKIPPED', 'SKIPPED', 'SKIPPED']);
    expect(report.counts).toMatchObject({ backups: 3, pass: 0, warn: 0, fail: 0, skipped: 3 });
    expect(addsUp(report.counts)).toBe(true);
  });

  it('issue 9.11: restore shows the backups it did not restore as SKIPPED and does not count them as pass', async () => {
    const older = `db-${stamp(30)}.tar`;
    const newer = `db-${stamp(1)}.tar`;
    const source = await folderWith('restore-some', {
      [older]: await packTar([{ name: 'old.txt', content: 'old data' }]),
      [newer]: await packTar([{ name: 'new.txt', content: 'new data' }]),
    });
    const json = join(dir, 'restore-some.json');
    const result = await runCli(
      [
        'restore',
        '--source',
        source,
        '--ledger',
        join(dir, 'restore-some-ledger'),
        '--json',
        json,
        '--quiet',
      ],
      dir,
    );
    expect(result.code).toBe(0);
    expect(rowOf(result.stdout, new RegExp(`^(?:\\S+/)?db\\s+${older}\\s`))).toMatch(
      /^(?:\S+\/)?db\s+\S+\s+archive\s+[\d.]+ K?i?B\s+\d+ h(\s+-)+\s+SKIPPED$/,
    );
    expect(rowOf(result.stdout, new RegExp(`^(?:\\S+/)?db\\s+${newer}\\s`))).toMatch(/\s(PASS|WARN)$/);
    const report = JSON.parse(await readFile(json, 'utf8')) as RunReport;
    const status = Object.fromEntries(report.backups.map((b) => [b.id, b.status]));
    expect(status[`${source}/${older}`]).toBe('SKIPPED');
    expect(status[`${source}/${newer}`]).not.toBe('SKIPPED');
    expect(report.counts.skipped).toBe(1);
    expect(report.counts.pass + report.counts.warn).toBe(1);
    expect(addsUp(report.counts)).toBe(true);
    expect(result.stdout).toMatch(
      /: 2 backup\(s\) in 1 series: \d pass, \d warn, 0 fail, 1 skipped \(not checked\);/,
    );
  });

  it('issue 9.11: a stale series is a FAIL row of its own and a fail in the summary counts', async () => {
    const source = await folderWith('stale-series', {
      ...verifiedFolder(`db/${stamp(1)}`, 'fresh'),
      ...verifiedFolder(`reports/${stamp(24 * 10)}`, 'old'),
    });
    const json = join(dir, 'stale-series.json');
    const result = await runCli(
      [
        'integrity',
        '--source',
        source,
        '--ledger',
        join(dir, 'stale-series-ledger'),
        '--json',
        json,
        '--quiet',
      ],
      dir,
    );
    expect(result.code).toBe(1);
    expect(rowOf(result.stdout, /^(?:\S+\/)?reports\s+\d{8}_\d{6}\//)).toMatch(/\bPASS$/);
    expect(rowOf(result.stdout, /^(?:\S+\/)?reports\s+\(series\)/)).toMatch(
      /^(?:\S+\/)?reports\s+\(series\)\s+series\b.*\bFAIL\s+-\s+-\s+FAIL$/,
    );
    expect(result.stdout).toContain(
      'FAIL: 2 backup(s) in 2 series and 1 series-level row(s): 2 pass, 0 warn, 1 fail, 0 skipped (not checked);',
    );
    const report = JSON.parse(await readFile(json, 'utf8')) as RunReport;
    expect(report.status).toBe('FAIL');
    expect(report.counts).toEqual({
      backups: 2,
      pass: 2,
      warn: 0,
      fail: 1,
      skipped: 0,
      series: 2,
      seriesRows: 1,
    });
    expect(addsUp(report.counts)).toBe(true);
  });
});
