import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { parseConfig } from '../../lib/core/config.ts';
import { UsageError } from '../../lib/core/errors.ts';
import type { BackupReport, RunReport } from '../../lib/core/model.ts';
import type { ObjectStore } from '../../lib/core/ports.ts';
import { sandboxRecords } from '../../lib/core/restore/launcher.ts';
import { runSandboxJob } from '../../lib/core/restore/sandbox-job.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';
import { discoverStage } from '../../lib/core/stages/discover.ts';
import { integrityStage } from '../../lib/core/stages/integrity.ts';
import { reportStage } from '../../lib/core/stages/report.ts';
import { loadRestoreJob, selectRestoresStage } from '../../lib/core/stages/select-restores.ts';
import { gzip, packTar, sha256Hex, truncateAt } from '../support/archives.ts';
import { runCli } from '../support/cli.ts';
import { freshLedger } from '../support/ledger.ts';
import { MemoryStore } from '../support/memory-store.ts';

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const now = new Date('2025-06-26T12:00:00Z');
const STAMP = '20250626_060000';

let dir: string;
let ledger: DynamoDbLedger;
let ctx: StageContext;
let memory: MemoryStore;
let runs = 0;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bv-no-false-pass-'));
  ledger = await freshLedger(() => now);
  memory = new MemoryStore('mem://bucket');
  ctx = {
    ledger,
    runStore: new FolderStore(join(dir, 'runs')),
    openSource: (url) => openSource(url),
    now: () => now,
  };
});

afterEach(async () => {
  await ledger.close();
  await rm(dir, { recursive: true, force: true });
});

function openSource(url: string): ObjectStore {
  return url === memory.url ? memory : new FolderStore(url);
}

async function folderWith(name: string, files: Record<string, string | Buffer>): Promise<string> {
  const root = join(dir, name);
  await mkdir(root, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

/** A tar whose one member is 600 bytes: a byte changed inside it still extracts cleanly. */
async function vaultTar(): Promise<Buffer> {
  return packTar([{ name: 'vault/ledger.csv', content: 'x'.repeat(600) }]);
}

/** A copy of `data` with one content byte changed: same size, still a valid archive. */
function alteredContent(data: Buffer, offset = 512 + 100): Buffer {
  const copy = Buffer.from(data);
  copy[offset] = (copy[offset] as number) ^ 0x01;
  return copy;
}

/** The CLI's `integrity`: discover, then every shard checked. */
async function integrityRun(source: string, config?: unknown): Promise<RunReport> {
  const runId = `run-${++runs}`;
  const discovery = await discoverStage(ctx, {
    runId,
    trigger: 'cli',
    command: 'integrity',
    sources: [source],
    config,
  });
  for (const shard of discovery.shards) await integrityStage(ctx, shard);
  return (await reportStage(ctx, runId)).report;
}

/** The CLI's `restore` (or, with `integrity`, `comprehensive`'s order): the sandbox job run in process. */
async function restoreRun(
  source: string,
  options: { integrity?: boolean; config?: unknown } = {},
): Promise<RunReport> {
  const runId = `run-${++runs}`;
  const discovery = await discoverStage(ctx, {
    runId,
    trigger: 'cli',
    command: options.integrity ? 'comprehensive' : 'restore',
    sources: [source],
    config: options.config ?? { defaults: { restore: { select: 'all' } } },
  });
  if (options.integrity) for (const shard of discovery.shards) await integrityStage(ctx, shard);
  const selection = await selectRestoresStage(ctx, runId);
  for (const restore of selection.restores) {
    const job = await loadRestoreJob(ctx, runId, restore);
    const root = await mkdtemp(join(dir, 'sandbox-'));
    const result = await runSandboxJob(job, { store: openSource(job.source), root });
    await ledger.recordResults(sandboxRecords(job, result, now));
  }
  return (await reportStage(ctx, runId)).report;
}

function backupNamed(report: RunReport, name: string): BackupReport {
  const found = report.backups.find((b) => b.id.endsWith(name));
  if (!found) throw new Error(`${name} is not in the report: ${report.backups.map((b) => b.id).join(', ')}`);
  return found;
}

const codes = (backup: BackupReport) => backup.findings.map((f) => f.code);

describe('issue 9.4: restore checks the stored bytes against every reference', () => {
  it('issue 9.4: restore alone fails a tar whose bytes differ from its sidecar, with the CHECKSUM_MISMATCH integrity gives', async () => {
    const tar = await vaultTar();
    const name = `vault-${STAMP}.tar`;
    const source = await folderWith('sidecar', {
      [name]: alteredContent(tar),
      [`${name}.sha256`]: `${sha256Hex(tar)}  ${name}\n`,
    });
    const restored = backupNamed(await restoreRun(source), name);
    expect(restored.restore.status).toBe('FAIL');
    expect(restored.restore.filesRestored).toBe(1);
    expect(restored.integrity.status).toBe('SKIPPED');
    expect(restored.status).toBe('FAIL');
    expect(codes(restored)).toEqual(['CHECKSUM_MISMATCH']);
    expect(restored.findings[0]?.message).toMatch(/but the sidecar vault-.*\.tar\.sha256 says/);

    const checked = backupNamed(await integrityRun(source), name);
    expect(checked.status).toBe('FAIL');
    expect(codes(checked)).toEqual(codes(restored));
    expect(checked.findings[0]?.message).toBe(restored.findings[0]?.message);
  });

  it('issue 9.4: restore alone compares with the checksum the ledger recorded at first sight: CHECKSUM_CHANGED', async () => {
    const tar = await vaultTar();
    const name = `vault-${STAMP}.tar`;
    const source = await folderWith('first-seen', { [name]: tar });
    const first = backupNamed(await integrityRun(source), name);
    expect(codes(first)).toEqual(['NO_REFERENCE_CHECKSUM']);

    const intact = backupNamed(await restoreRun(source), name);
    expect(intact.status).toBe('PASS');
    expect(intact.findings).toEqual([]);

    await writeFile(join(source, name), alteredContent(tar));
    const changed = backupNamed(await restoreRun(source), name);
    expect(changed.restore.status).toBe('FAIL');
    expect(changed.status).toBe('FAIL');
    expect(codes(changed)).toEqual(['CHECKSUM_CHANGED']);
    expect(changed.findings[0]?.message).toMatch(/changed since it was first seen on 2025-06-26/);
  });

  it("issue 9.4: restore alone of a directory backup checks SHA256SUMS and the store's checksum with integrity's codes", async () => {
    const prefix = `db/${STAMP}/`;
    memory.put(`${prefix}a.txt`, 'alpha\n');
    memory.put(`${prefix}b.txt`, 'beta\n');
    memory.put(`${prefix}c.txt`, 'gamma\n');
    memory.put(`${prefix}SHA256SUMS`, `${sha256Hex('ALPHA\n')}  a.txt\n${sha256Hex('gamma\n')}  c.txt\n`);
    // b.txt is not listed: the store's full-object checksum (taken at upload) is its reference.
    const b = memory.objects.get(`${prefix}b.txt`);
    if (!b) throw new Error('b.txt not stored');
    b.info.checksumSha256 = sha256Hex('BETA\n');

    const restored = backupNamed(await restoreRun(memory.url), prefix);
    expect(restored.restore.status).toBe('FAIL');
    expect(restored.findings.map((f) => [f.code, f.object])).toEqual([
      ['CHECKSUM_MISMATCH', 'b.txt'],
      ['CHECKSUM_MISMATCH', 'a.txt'],
      ['UNLISTED_OBJECT', 'b.txt'],
    ]);
    const checked = backupNamed(await integrityRun(memory.url), prefix);
    expect(checked.findings.map((f) => [f.code, f.object])).toEqual(
      restored.findings.map((f) => [f.code, f.object]),
    );
  });

  it('issue 9.4: a restore of a damaged archive cut short still compares its stored bytes (ARCHIVE_CORRUPT and CHECKSUM_MISMATCH)', async () => {
    const tar = await vaultTar();
    const gz = gzip(tar);
    const damaged = Buffer.from(gz);
    damaged[20] = (damaged[20] as number) ^ 0xff;
    const name = `vault-${STAMP}.tar.gz`;
    const source = await folderWith('corrupt', {
      [name]: damaged,
      [`${name}.sha256`]: `${sha256Hex(gz)}  ${name}\n`,
    });
    const restored = backupNamed(await restoreRun(source), name);
    expect(restored.status).toBe('FAIL');
    expect(codes(restored).sort()).toEqual(['ARCHIVE_CORRUPT', 'CHECKSUM_MISMATCH']);
    const checked = backupNamed(await integrityRun(source), name);
    expect(codes(checked).sort()).toEqual(['ARCHIVE_CORRUPT', 'CHECKSUM_MISMATCH']);
  });

  it('issue 9.4: the CLI `restore` alone fails a damaged archive (exit 1, CHECKSUM_MISMATCH in the report)', async () => {
    const tar = await vaultTar();
    const name = `vault-${STAMP}.tar`;
    const source = await folderWith('cli-restore', {
      [name]: alteredContent(tar),
      [`${name}.sha256`]: `${sha256Hex(tar)}  ${name}\n`,
    });
    const json = join(dir, 'cli-restore.json');
    const run = await runCli(
      ['restore', '--source', source, '--ledger', join(dir, 'cli-ledger'), '--json', json, '--quiet'],
      dir,
    );
    expect(run.code).toBe(1);
    const report = JSON.parse(await readFile(json, 'utf8')) as RunReport;
    const backup = backupNamed(report, name);
    expect(backup.status).toBe('FAIL');
    expect(backup.restore.status).toBe('FAIL');
    expect(codes(backup)).toEqual(['CHECKSUM_MISMATCH']);
  });
});

describe('issue 9.9: archives are recognised by their bytes and by configured names', () => {
  it('issue 9.9: a Qdrant .snapshot cut short is ARCHIVE_TRUNCATED, as the same bytes named .tar are; intact it passes', async () => {
    const tar = await vaultTar();
    const cut = truncateAt(tar, 800);
    const source = await folderWith('snapshots', {
      [`qdrant-${STAMP}.snapshot`]: cut,
      [`renamed-${STAMP}.tar`]: cut,
      [`intact-${STAMP}.snapshot`]: tar,
      [`intact-${STAMP}.snapshot.sha256`]: `${sha256Hex(tar)}  intact-${STAMP}.snapshot\n`,
    });
    const report = await integrityRun(source);
    const snapshot = backupNamed(report, `qdrant-${STAMP}.snapshot`);
    expect(snapshot.kind).toBe('archive');
    expect(snapshot.status).toBe('FAIL');
    expect(codes(snapshot)).toContain('ARCHIVE_TRUNCATED');
    expect(codes(snapshot)).toEqual(codes(backupNamed(report, `renamed-${STAMP}.tar`)));
    const intact = backupNamed(report, `intact-${STAMP}.snapshot`);
    expect(intact.status).toBe('PASS');
    expect(intact.findings).toEqual([]);
  });

  it('issue 9.9: inside a directory backup, a file whose bytes are gzip or tar is checked as an archive, by integrity and by restore alone', async () => {
    const tar = await vaultTar();
    // A v7 header has no `ustar` magic: recognised by its header checksum.
    const v7 = Buffer.from(tar);
    v7.fill(0, 257, 265);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (v7[i] as number);
    v7.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const files: Record<string, Buffer | string> = {
      'segments/0001': truncateAt(gzip(tar), 60),
      'segments/0002': truncateAt(v7, 800),
      'segments/0003': gzip(tar),
      'notes.txt': 'plain text\n',
    };
    const listed = Object.entries(files)
      .map(([path, body]) => `${sha256Hex(body)}  ${path}\n`)
      .join('');
    const source = await folderWith('segments', {
      ...Object.fromEntries(Object.entries(files).map(([p, b]) => [`qdrant/${STAMP}/${p}`, b])),
      [`qdrant/${STAMP}/SHA256SUMS`]: listed,
    });
    const backup = backupNamed(await integrityRun(source), `qdrant/${STAMP}/`);
    expect(backup.kind).toBe('directory');
    expect(backup.status).toBe('FAIL');
    // Files are read in parallel: the order of their findings is not the point.
    expect(backup.findings.map((f) => [f.code, f.object]).sort()).toEqual([
      ['ARCHIVE_TRUNCATED', 'segments/0001'],
      ['ARCHIVE_TRUNCATED', 'segments/0002'],
    ]);

    // Restored alone, the same files are checked as archives while they are downloaded.
    const restored = backupNamed(await restoreRun(source), `qdrant/${STAMP}/`);
    expect(restored.restore.status).toBe('FAIL');
    expect(restored.restore.filesRestored).toBe(4);
    expect(restored.findings.map((f) => [f.code, f.object]).sort()).toEqual([
      ['ARCHIVE_TRUNCATED', 'segments/0001'],
      ['ARCHIVE_TRUNCATED', 'segments/0002'],
    ]);
  });

  it('issue 9.9: restore alone restores a .snapshot by what it holds, and fails it cut short', async () => {
    const tar = await vaultTar();
    const source = await folderWith('restore-snapshots', {
      [`intact-${STAMP}.snapshot`]: tar,
      [`intact-${STAMP}.snapshot.sha256`]: `${sha256Hex(tar)}  intact-${STAMP}.snapshot\n`,
      [`qdrant-${STAMP}.snapshot`]: truncateAt(tar, 800),
    });
    const report = await restoreRun(source);
    const intact = backupNamed(report, `intact-${STAMP}.snapshot`);
    expect(intact.restore.status).toBe('PASS');
    expect(intact.restore.filesRestored).toBe(1);
    expect(intact.findings).toEqual([]);
    const cut = backupNamed(report, `qdrant-${STAMP}.snapshot`);
    expect(cut.restore.status).toBe('FAIL');
    expect(codes(cut)).toContain('ARCHIVE_TRUNCATED');
  });

  it('issue 9.9: archives.patterns names more archives; a named object that holds no archive is ARCHIVE_CORRUPT; a bad value is refused naming the key', async () => {
    const tar = await vaultTar();
    const source = await folderWith('patterns', {
      [`vectors-${STAMP}.qdump`]: truncateAt(tar, 800),
      [`notes-${STAMP}.qdump`]: 'just some text, no archive at all\n'.repeat(40),
    });
    const config = { archives: { patterns: ['*.qdump'] } };
    const report = await integrityRun(source, config);
    expect(codes(backupNamed(report, `vectors-${STAMP}.qdump`))).toContain('ARCHIVE_TRUNCATED');
    const notes = backupNamed(report, `notes-${STAMP}.qdump`);
    expect(notes.status).toBe('FAIL');
    expect(codes(notes)).toEqual(['ARCHIVE_CORRUPT']);
    expect(notes.findings[0]?.message).toMatch(/holds no gzip, zstd or tar data/);

    const without = await integrityRun(source);
    expect(without.backups).toEqual([]);

    expect(() => parseConfig({ archives: { patterns: '*.qdump' } })).toThrow(UsageError);
    expect(() => parseConfig({ archives: { patterns: '*.qdump' } })).toThrow(/"archives.patterns"/);
    expect(() => parseConfig({ archives: { other: [] } })).toThrow(/"archives.other"/);
    expect(parseConfig({}).archives.patterns).toEqual(['*.snapshot']);
  });

  it('issue 9.9: the CLI `integrity` fails a .snapshot cut short (exit 1, ARCHIVE_TRUNCATED)', async () => {
    const tar = await vaultTar();
    const source = await folderWith('cli-snapshot', { [`qdrant-${STAMP}.snapshot`]: truncateAt(tar, 800) });
    const json = join(dir, 'cli-snapshot.json');
    const run = await runCli(
      ['integrity', '--source', source, '--ledger', join(dir, 'cli-ledger-9'), '--json', json, '--quiet'],
      dir,
    );
    expect(run.code).toBe(1);
    const report = JSON.parse(await readFile(json, 'utf8')) as RunReport;
    const backup = backupNamed(report, `qdrant-${STAMP}.snapshot`);
    expect(backup.status).toBe('FAIL');
    expect(codes(backup)).toContain('ARCHIVE_TRUNCATED');
  });
});

describe('issue 9.12: one finding per fact, the same code whichever command found it', () => {
  it('issue 9.12: an empty .sql.gz restored alone is EMPTY_BACKUP, as integrity says, not ARCHIVE_TRUNCATED', async () => {
    const name = `dump-${STAMP}.sql.gz`;
    const source = await folderWith('empty-gz', { [name]: Buffer.alloc(0) });
    const restored = backupNamed(await restoreRun(source), name);
    expect(restored.status).toBe('FAIL');
    expect(codes(restored)).toEqual(['EMPTY_BACKUP']);
    const checked = backupNamed(await integrityRun(source), name);
    expect(codes(checked)).toEqual(['EMPTY_BACKUP']);
    expect(checked.findings[0]?.message).toBe(restored.findings[0]?.message);
  });

  it('issue 9.12: a 0-byte archive listed in its folder SHA256SUMS is compared with that line, never NO_REFERENCE_CHECKSUM claiming there is none', async () => {
    const prefix = `db/${STAMP}/`;
    const source = await folderWith('zero-listed', {
      [`${prefix}db.tar.gz`]: Buffer.alloc(0),
      [`${prefix}old.tar.gz`]: Buffer.alloc(0),
      [`${prefix}SHA256SUMS`]: `${EMPTY_SHA256}  db.tar.gz\n${sha256Hex('was not empty')}  old.tar.gz\n`,
    });
    const report = await integrityRun(source);
    const listedEmpty = backupNamed(report, `${prefix}db.tar.gz`);
    expect(codes(listedEmpty)).toEqual(['EMPTY_BACKUP']);
    const wasFull = backupNamed(report, `${prefix}old.tar.gz`);
    expect(codes(wasFull)).toEqual(['EMPTY_BACKUP', 'CHECKSUM_MISMATCH']);
    expect(wasFull.findings[1]?.message).toMatch(/SHA256SUMS \(line 2\) says/);
    for (const backup of report.backups) expect(codes(backup)).not.toContain('NO_REFERENCE_CHECKSUM');
  });

  it('issue 9.12: integrity and restore in one run report each fact once (EMPTY_BACKUP, CHECKSUM_MISMATCH, ARCHIVE_TRUNCATED)', async () => {
    const tar = await vaultTar();
    const hollow = await packTar([{ name: 'data/db/dump.sql', content: '' }]);
    const source = await folderWith('both-stages', {
      [`vault-${STAMP}.tar`]: alteredContent(tar),
      [`vault-${STAMP}.tar.sha256`]: `${sha256Hex(tar)}  vault-${STAMP}.tar\n`,
      [`hollow-${STAMP}.tar`]: hollow,
      [`hollow-${STAMP}.tar.sha256`]: `${sha256Hex(hollow)}  hollow-${STAMP}.tar\n`,
      [`logs-${STAMP}.tgz`]: truncateAt(gzip(tar), 100),
    });
    const report = await restoreRun(source, { integrity: true });
    const vault = backupNamed(report, `vault-${STAMP}.tar`);
    expect(vault.integrity.status).toBe('FAIL');
    expect(vault.restore.status).toBe('FAIL');
    expect(codes(vault)).toEqual(['CHECKSUM_MISMATCH']);
    const empty = backupNamed(report, `hollow-${STAMP}.tar`);
    expect(empty.integrity.status).toBe('FAIL');
    expect(empty.restore.status).toBe('FAIL');
    expect(codes(empty)).toEqual(['EMPTY_BACKUP']);
    const cut = backupNamed(report, `logs-${STAMP}.tgz`);
    expect(cut.integrity.status).toBe('FAIL');
    expect(cut.restore.status).toBe('FAIL');
    expect(codes(cut)).toEqual(['ARCHIVE_TRUNCATED']);
  });
});
