import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/model.ts';
import { packTar } from '../support/archives.ts';
import { fetchedUrls, lookAt } from '../support/chromium.ts';
import { runCli } from '../support/cli.ts';
import { stampHoursAgo as stamp } from '../support/time.ts';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bv-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function folderWith(name: string, files: Record<string, string | Buffer>): Promise<string> {
  const root = join(dir, name);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts');

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('backup-validator CLI', () => {
  it('prints usage with --help and exits 0', async () => {
    const result = await runCli(['--help'], dir);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: backup-validator <command>');
  });

  it.each([
    [['frobnicate'], 'unknown command "frobnicate"'],
    [
      ['integrity', '--sauce', 'x'],
      'unknown option --sauce for integrity (did you mean --source?); the options of integrity are: --source,',
    ],
    [['integrity'], 'no source to validate'],
    [['history', '--runs', 'zero'], '--runs must be a whole number'],
  ])('exits 2 on bad usage: %j', async (args, message) => {
    const result = await runCli([...args, '--ledger', join(dir, 'usage-ledger')], dir);
    expect(result.stderr).toContain(message);
    expect(result.code).toBe(2);
  });

  it('exits 2 naming the key of a bad configuration, before anything runs', async () => {
    const source = await folderWith('cfg-src', { [`a-${stamp(1)}.tar`]: 'x' });
    const config = join(dir, 'bad.json');
    await writeFile(config, JSON.stringify({ defaults: { rpoMinutes: -1 } }));
    const result = await runCli(
      ['integrity', '--source', source, '--config', config, '--ledger', join(dir, 'cfg-ledger')],
      dir,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('defaults.rpoMinutes');
    expect(result.stdout).toBe('');
  });

  it('issue 10 (CLI): a source folder that does not exist is bad usage: exit 2, one clear line, no ledger made', async () => {
    const missing = join(dir, 'no-such-folder');
    const ledger = join(dir, 'missing-ledger');
    const result = await runCli(['discover', '--source', missing, '--ledger', ledger], dir);
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')[0]).toBe(
      `backup-validator: --source ${missing}: no such folder; check the path`,
    );
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(ledger)).toBe(false);
  });

  it('discovers an inventory and writes the JSON report', async () => {
    const source = await folderWith('inv', {
      [`db-${stamp(2)}.tar`]: 'x'.repeat(10),
      [`db-${stamp(26)}.tar`]: 'y'.repeat(10),
      [`backups/${stamp(3)}/app/config.json`]: '{}',
    });
    const json = join(dir, 'inv.json');
    const result = await runCli(
      ['discover', '--source', source, '--json', json, '--ledger', join(dir, 'inv-ledger')],
      dir,
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^SERIES\s+BACKUP\s+KIND\s+OBJECTS\s+SIZE\s+AGE/m);
    const report = JSON.parse(await readFile(json, 'utf8')) as RunReport;
    expect(report.schemaVersion).toBe(1);
    expect(report.backups.map((b) => [b.series, b.kind, b.integrity.status])).toEqual([
      [`${source}/backups`, 'directory', 'SKIPPED'],
      [`${source}/db`, 'archive', 'SKIPPED'],
      [`${source}/db`, 'archive', 'SKIPPED'],
    ]);
  });

  it('passes healthy backups (exit 0) and fails a damaged one (exit 1), recording history', async () => {
    const good = Buffer.from('healthy contents');
    const healthy = await folderWith('healthy', {
      [`backups/${stamp(1)}/data.bin`]: good,
      [`backups/${stamp(1)}/SHA256SUMS`]: `${sha(good)}  data.bin\n`,
    });
    const ledger = join(dir, 'ok-ledger');
    const ok = await runCli(['integrity', '--source', healthy, '--ledger', ledger, '--quiet'], dir);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/PASS: 1 backup\(s\) in 1 series: 1 pass, 0 warn, 0 fail/);

    const damaged = await folderWith('damaged', {
      [`backups/${stamp(1)}/data.bin`]: Buffer.from('healthy c0ntents'),
      [`backups/${stamp(1)}/SHA256SUMS`]: `${sha(good)}  data.bin\n`,
    });
    const bad = await runCli(['integrity', '--source', damaged, '--ledger', ledger], dir);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/ERROR CHECKSUM_MISMATCH\s+\S+ \[data.bin\]/);

    const history = await runCli(['history', '--ledger', ledger], dir);
    expect(history.code).toBe(0);
    expect(history.stdout).toContain('FAIL');
    expect(history.stdout).toContain('PASS');
  });

  it('history shows a series whose newest backup is older than its RPO as FAIL, though its checks passed', async () => {
    const good = Buffer.from('old but intact');
    const source = await folderWith('stale', {
      [`backups/${stamp(24 * 10)}/data.bin`]: good,
      [`backups/${stamp(24 * 10)}/SHA256SUMS`]: `${sha(good)}  data.bin\n`,
    });
    const ledger = join(dir, 'stale-ledger');
    const run = await runCli(['integrity', '--source', source, '--ledger', ledger, '--quiet'], dir);
    expect(run.stdout).toMatch(/RPO_EXCEEDED/);
    expect(run.code).toBe(1);
    const history = await runCli(['history', '--ledger', ledger], dir);
    expect(history.code).toBe(0);
    expect(history.stdout).toMatch(/backups {2}FAIL/);
    expect(history.stdout).toMatch(
      /RPO_EXCEEDED: the newest backup was 10 d old when last checked, the RPO is 24 h/,
    );
  });

  it('reports CHECKSUM_CHANGED when a backup differs from what the ledger saw first', async () => {
    const name = `vault-${stamp(1)}.tar`;
    const tar = await packTar([{ name: 'ledger.csv', content: 'x'.repeat(600) }]);
    const source = await folderWith('changed', { [name]: tar });
    const ledger = join(dir, 'changed-ledger');
    const first = await runCli(['integrity', '--source', source, '--ledger', ledger, '--quiet'], dir);
    expect(first.stdout).toContain('NO_REFERENCE_CHECKSUM');
    expect(first.code).toBe(0);
    const again = await runCli(['integrity', '--source', source, '--ledger', ledger, '--quiet'], dir);
    expect(again.stdout).not.toContain('NO_REFERENCE_CHECKSUM');
    expect(again.code).toBe(0);
    const altered = Buffer.from(tar);
    altered.write('y', 512 + 100);
    await writeFile(join(source, name), altered);
    const changed = await runCli(['integrity', '--source', source, '--ledger', ledger, '--quiet'], dir);
    expect(changed.stdout).toMatch(/ERROR CHECKSUM_CHANGED/);
    expect(changed.code).toBe(1);
  });

  it('runs the demo end to end: every sample backup gets the verdict it was made for', async () => {
    const cwd = await mkdtemp(join(dir, 'demo-'));
    const result = await runCli(['demo', '--quiet'], cwd);
    expect(result.stdout).toContain('demo: as intended');
    expect(result.code).toBe(0);
    const report = JSON.parse(
      await readFile(join(cwd, '.backup-validator/demo-report.json'), 'utf8'),
    ) as RunReport;
    // 8 damaged backups and the stale series' own row; nothing unchecked.
    expect(report.counts).toMatchObject({ backups: 13, fail: 9, skipped: 0, seriesRows: 1 });

    // issue 14: the demo's HTML report, as a person sees it in a browser.
    const html = join(cwd, '.backup-validator/demo-report.html');
    expect(result.stdout).toContain(`HTML report (open it in a browser): ${html}`);
    await mkdir(ARTIFACTS, { recursive: true });
    const screenshot = join(ARTIFACTS, 'demo-report.png');
    const page = await lookAt(html, screenshot, join(cwd, 'chromium-profile'));
    expect(page.console).toEqual([]);
    expect(fetchedUrls(page.dom)).toEqual([]);
    expect(page.dom).toContain(`content="default-src 'none'`);
    expect((await stat(screenshot)).size).toBeGreaterThan(10_000);
    const failed = report.backups.filter((b) => b.status === 'FAIL');
    expect(failed.length).toBe(8);
    for (const b of failed) {
      const name = b.id.split('/').filter(Boolean).pop() as string;
      expect(page.dom).toMatch(
        new RegExp(`<tr class="row-FAIL"><th scope="row" title="[^"]*">${escapeRegExp(name)}</th>`),
      );
    }
    const sections = page.dom.split('<section class="series">').slice(1);
    expect(sections).toHaveLength(report.counts.series);
    for (const section of sections) expect(section).toContain('<svg role="img"');

    const again = await runCli(['demo', '--quiet'], cwd);
    expect(again.code).toBe(0);
    // Two whole demo runs (13 backups, 13 restores each): minutes on a loaded 2-core machine.
  }, 600_000);

  it('exits 3 when the ledger cannot be reached, never reporting a pass', async () => {
    const source = await folderWith('no-ledger', {
      [`db-${stamp(1)}.tar`]: await packTar([{ name: 'a', content: 'a' }]),
    });
    const result = await runCli(['integrity', '--source', source, '--ledger', 'dynamodb://bv-ledger'], dir, {
      AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9',
      AWS_ACCESS_KEY_ID: 'x',
      AWS_SECRET_ACCESS_KEY: 'x',
      AWS_REGION: 'us-east-1',
    });
    expect(result.code).toBe(3);
    expect(result.stdout).not.toContain('PASS');
    expect(result.stderr).toContain(
      'the ledger dynamodb://bv-ledger cannot be reached at http://127.0.0.1:9',
    );
  });
});
