import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, packTar, sha256Hex } from '../support/archives.ts';
import { compiledCli, runCli, runCompiledCli } from '../support/cli.ts';
import { visible } from '../support/terminal.ts';
import { stampHoursAgo as stamp } from '../support/time.ts';

let dir: string;
let source: string;
let bin: string;

beforeAll(async () => {
  dir = await makeTempDir('bv-cli-compiled-');
  source = join(dir, 'backups');
  await mkdir(source);
  const tar = await packTar([{ name: 'db.sql', content: 'CREATE TABLE t (x int);\n-- Dump completed\n' }]);
  const name = `db-${stamp(1)}.tar`;
  await writeFile(join(source, name), tar);
  await writeFile(join(source, `${name}.sha256`), `${sha256Hex(tar)}  ${name}\n`);
  bin = await compiledCli();
}, 180_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ANSI = /<ESC>\[\d+m/;
/** A duration as humanTime writes it: `under 1 ms`, `64 ms`, `2.0 s`, `2 min 5 s`. */
const DURATION = String.raw`(?:under 1 ms|\d+ ms|\d+\.\d s|\d+ min(?: \d+ s)?)`;

describe('issue 13: the compiled CLI', () => {
  it('is plain JavaScript with no TypeScript loader, and answers --help', async () => {
    const files = await readdir(join(bin, '..'));
    expect(files).toContain('restore-sandbox.mjs');
    for (const file of files.filter((f) => f.endsWith('.mjs'))) {
      const text = await readFile(join(bin, '..', file), 'utf8');
      expect(text, file).not.toMatch(/from ["']tsx|import\(["']tsx/);
    }
    const help = await runCompiledCli(['--help'], dir);
    expect(help.code).toBe(0);
    expect(help.stderr).toBe('');
    expect(help.stdout).toMatch(/^Usage: backup-validator <command> \[options\]/);
    expect(help.stdout).toContain('backup-validator help <command>');
  });

  it('help <command> and <command> --help show its options and an example', async () => {
    const viaHelp = await runCompiledCli(['help', 'restore'], dir);
    const viaFlag = await runCompiledCli(['restore', '--help'], dir);
    expect(viaHelp.code).toBe(0);
    expect(viaFlag.stdout).toBe(viaHelp.stdout);
    expect(viaHelp.stdout).toMatch(/^Usage: backup-validator restore --source /);
    expect(viaHelp.stdout).toContain('\nExample:\n  backup-validator restore --source ');
  });

  it('integrity then restore, piped: a plain line a stage and a backup with the real totals; the process leaves nothing behind', async () => {
    const ledger = join(dir, 'ledger-piped');
    const integrity = await runCompiledCli(['integrity', '--source', source, '--ledger', ledger], dir);
    const lines = integrity.stderr.split('\n');
    expect(lines[0]).toBe('discover: started');
    expect(lines[1]).toMatch(new RegExp(String.raw`^discover: found 1 backup, \d+\.\d KiB in ${DURATION}$`));
    expect(lines[2]).toMatch(/^integrity: 1 backup, \d+\.\d KiB$/);
    expect(lines[3]).toMatch(/^integrity 1\/1: PASS \/.*\/db-\d{8}_\d{6}\.tar \(\d+\.\d KiB\)$/);
    expect(lines[4]).toMatch(
      new RegExp(String.raw`^integrity: 1/1 backup, \d+\.\d KiB in ${DURATION} \(.*/s\)$`),
    );
    expect(lines.slice(5)).toEqual([
      'report: started',
      expect.stringMatching(new RegExp(`^report: done in ${DURATION}$`)),
      '',
    ]);
    expect(integrity.stdout).toMatch(/\nSCORE: integrity score from 0 to 1, weighted checksum 40 %/);
    expect(integrity.code).toBe(0);

    const restore = await runCompiledCli(['restore', '--source', source, '--ledger', ledger], dir);
    expect(restore.stderr).toMatch(/^restore: 1 backup, \d+\.\d KiB$/m);
    expect(restore.stderr).toMatch(/^restore 1\/1: PASS \/.*\/db-\d{8}_\d{6}\.tar \(\d+\.\d KiB\)$/m);
    expect(visible(restore.stderr)).not.toMatch(ANSI);
    expect(restore.code).toBe(0);
    // Neither the CLI nor a sandbox it started (both run from the build's own folder) is still running.
    const processes = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    expect(processes.split('\n').filter((line) => line.includes(join(bin, '..')))).toEqual([]);
  });

  it('comprehensive shows each stage of the pipeline, in order', async () => {
    const result = await runCompiledCli(
      ['comprehensive', '--source', source, '--ledger', join(dir, 'ledger-comprehensive')],
      dir,
    );
    const headers = result.stderr
      .split('\n')
      .filter((line) => /^\w+: (started|\d+ backups?,)/.test(line))
      .map((line) => line.split(':')[0]);
    expect(headers).toEqual(['discover', 'integrity', 'restore', 'redundancy', 'report']);
    expect(result.stderr).toMatch(/^restore: 1 backup, \d+\.\d KiB$/m);
    expect(result.code).toBe(0);
  });

  it('on a terminal (a pseudo-terminal): stage headers and colour, none with NO_COLOR', async () => {
    const args = ['integrity', '--source', source, '--ledger', join(dir, 'ledger-tty')];
    const coloured = await runCompiledCli(args, dir, { NO_COLOR: undefined, TERM: 'xterm' }, { tty: true });
    expect(coloured.stdout).toContain('\x1b[1m▸ integrity\x1b[0m  1 backup, ');
    expect(visible(coloured.stdout)).toMatch(/\r<ESC>\[K {2}.*1\/1 backups .* ETA /);
    expect(coloured.code).toBe(0);
    const plain = await runCompiledCli(args, dir, { NO_COLOR: '1', TERM: 'xterm' }, { tty: true });
    expect(plain.stdout).toContain('▸ integrity  1 backup, ');
    expect(visible(plain.stdout)).not.toMatch(ANSI);
    expect(plain.code).toBe(0);
  });
});

describe('issue 13: mistakes explained', () => {
  it('a JSON syntax error in the configuration names the file, the line and the column', async () => {
    const config = join(dir, 'policy.json');
    await writeFile(config, '{\n  "defaults": {\n    "rpoMinutes": 60,\n  }\n}\n');
    const result = await runCli(['integrity', '--source', source, '--config', config], dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `backup-validator: ${config}:4:3: the configuration is not valid JSON: Expected double-quoted property name\n` +
        'Run "backup-validator help integrity" for usage.\n',
    );
  });
});
