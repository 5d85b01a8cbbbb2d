import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupArgv } from '../../lib/cli/backup-args.ts';
import { backupStamp } from '../../lib/cli/backup-command.ts';
import { seriesNameOf } from '../../lib/core/catalogue.ts';
import { parseConfig } from '../../lib/core/config.ts';
import { UsageError } from '../../lib/core/errors.ts';
import { runCli } from '../support/cli.ts';

describe('issue 16: backup command line and jobs', () => {
  it('issue 16: finds the backup command wherever it stands among the options', () => {
    expect(backupArgv(['backup', '--from', 'x'])).toEqual(['--from', 'x']);
    expect(backupArgv(['--quiet', 'backup', 'memory'])).toEqual(['--quiet', 'memory']);
    expect(backupArgv(['--config', 'backup', 'integrity'])).toBeUndefined();
    expect(backupArgv(['integrity', '--source', 'backup'])).toBeUndefined();
    expect(backupArgv(['--series', 'x', 'backup'])).toEqual(['--series', 'x']);
  });

  it('an unknown backup option names the options of backup and the nearest one, as the other commands do', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'bv-backup-args-'));
    try {
      const result = await runCli(['backup', '--frm', '/srv/data', '--to', join(cwd, 'out')], cwd);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(
        'unknown option --frm for backup (did you mean --from?); the options of backup are: --from, --name, --to, ' +
          '--series, --compress, --verify, --config, --json, --ledger, --run-store, --quiet, --verbose, --help',
      );
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });

  it('issue 16: names backups so the catalogue reads the series and the UTC time back', () => {
    const stamp = backupStamp(new Date('2025-06-25T11:46:22.123Z'));
    expect(stamp).toBe('20250625T114622Z');
    expect(seriesNameOf(`memory-${stamp}`)).toBe('memory');
    expect(seriesNameOf(`db.prod-${stamp}`)).toBe('db.prod');
  });

  it('issue 16: reads named backup jobs and names the key of a wrong one', () => {
    const config = parseConfig({
      backups: { memory: { from: ['/srv/mem0', 'docker-volume:v'], to: 's3://b/p', compress: 'zstd' } },
    });
    expect(config.backups?.memory).toEqual({
      from: ['/srv/mem0', 'docker-volume:v'],
      to: 's3://b/p',
      compress: 'zstd',
    });
    const bad = (document: unknown) => () => parseConfig(document);
    expect(bad({ backups: { m: { from: ['x'] } } })).toThrow(/backups\.m\.to/);
    expect(bad({ backups: { m: { from: [], to: 'x' } } })).toThrow(/backups\.m\.from/);
    expect(bad({ backups: { m: { from: ['x'], to: 'y', when: 'daily' } } })).toThrow(
      /unknown configuration key "backups\.m\.when"/,
    );
    expect(bad({ backups: { m: { from: ['x'], to: 'y', series: 'db-20250625' } } })).toThrow(UsageError);
    expect(bad({ backups: { m: { from: ['x'], to: 'y', verify: 'all' } } })).toThrow(/backups\.m\.verify/);
  });
});
