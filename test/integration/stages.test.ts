import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';
import { discoverStage, SHARD_LIMITS } from '../../lib/core/stages/discover.ts';
import { integrityStage } from '../../lib/core/stages/integrity.ts';
import { recordFailureStage } from '../../lib/core/stages/record-failure.ts';
import { redundancyStage } from '../../lib/core/stages/redundancy.ts';
import { reportStage } from '../../lib/core/stages/report.ts';
import { selectRestoresStage } from '../../lib/core/stages/select-restores.ts';
import { folderStageContext, freshLedger } from '../support/ledger.ts';
import { MemoryStore } from '../support/memory-store.ts';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A ustar tar of small text files, made here so the test needs no tool. */
function tar(files: Record<string, string>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    const header = Buffer.alloc(512);
    header.write(name, 0);
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(`${Buffer.byteLength(content).toString(8).padStart(11, '0')}\0`, 124);
    header.write('00000000000\0', 136);
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0', 257);
    header.write('00', 263);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header);
    const body = Buffer.alloc(Math.ceil(Buffer.byteLength(content) / 512) * 512);
    body.write(content);
    blocks.push(body);
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

let dir: string;
let ledger: DynamoDbLedger;
let ctx: StageContext;
const now = new Date('2025-06-26T12:00:00Z');

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bv-stages-'));
  ledger = await freshLedger(() => now);
  ctx = folderStageContext(ledger, join(dir, 'runs'), () => now);
});

afterEach(async () => {
  await ledger.close();
  await rm(dir, { recursive: true, force: true });
});

async function writeArchive(source: string, name: string, files: Record<string, string>, sidecar = true) {
  const gz = gzipSync(tar(files));
  await writeFile(join(source, name), gz);
  if (sidecar) await writeFile(join(source, `${name}.sha256`), `${sha(gz)}  ${name}\n`);
  return gz;
}

describe('pipeline stages over a folder and the ledger', () => {
  it('discovers, checks, restores-selects, copies and reports; a corrupt backup fails alone', async () => {
    const source = join(dir, 'src');
    await mkdir(source);
    await writeArchive(source, 'db-20250626_110000.tar.gz', { 'a.txt': 'alpha', 'b.txt': 'bravo' });
    await writeArchive(source, 'db-20250625_110000.tar.gz', { 'a.txt': 'alpha0' });
    const broken = await writeArchive(source, 'web-20250626_100000.tar.gz', {
      'index.html': '<html>'.repeat(200),
    });
    broken.writeUInt8((broken.readUInt8(broken.length - 20) ^ 0xff) & 0xff, broken.length - 20);
    await writeFile(join(source, 'web-20250626_100000.tar.gz'), broken);
    const target = join(dir, 'copies');
    const config = {
      defaults: { redundancy: { targets: [target] } },
      series: { web: { rpoMinutes: 30, rtoMinutes: 60 } },
    };

    const discovery = await discoverStage(ctx, {
      runId: 'run-1',
      trigger: 'cli',
      command: 'comprehensive',
      sources: [source],
      config,
    });
    expect(discovery.backups).toBe(3);
    expect(discovery.series).toBe(2);
    expect(discovery.runFindings.map((f) => [f.code, f.series])).toEqual([['RPO_EXCEEDED', `${source}/web`]]);
    // The verdicts go to the ledger too, for history: web stale, db within its (default) RPO.
    const rpo = Object.fromEntries((await ledger.latestBySeries()).map((s) => [s.series, s.rpo]));
    expect(rpo[`${source}/web`]).toMatchObject({ runId: 'run-1', rpoMinutes: 30, exceeded: true });
    expect(rpo[`${source}/db`]).toMatchObject({ runId: 'run-1', rpoMinutes: 1440, exceeded: false });

    for (const shard of discovery.shards) await integrityStage(ctx, shard);
    const selection = await selectRestoresStage(ctx, 'run-1');
    // The run-wide timeout is the largest per-restore one: web's 60 min RTO beats db's default 30.
    expect(selection).toEqual({ restores: [0, 1], heartbeatSeconds: 300, timeoutSeconds: 60 * 60 * 3 });

    const copies = await redundancyStage(ctx, 'run-1', (url) => new FolderStore(url));
    expect(copies).toEqual({ checked: 3, copied: 4, missing: 1 });
    expect((await readdir(target)).sort()).toEqual([
      'db-20250625_110000.tar.gz',
      'db-20250625_110000.tar.gz.sha256',
      'db-20250626_110000.tar.gz',
      'db-20250626_110000.tar.gz.sha256',
    ]);
    expect(await ledger.copiesOf(`${source}/db-20250626_110000.tar.gz`)).toHaveLength(1);

    const { report, status } = await reportStage(ctx, 'run-1');
    expect(status).toBe('FAIL');
    const byName = Object.fromEntries(report.backups.map((b) => [b.id.slice(source.length + 1), b]));
    expect(byName['db-20250626_110000.tar.gz']?.status).toBe('PASS');
    expect(byName['db-20250625_110000.tar.gz']?.status).toBe('PASS');
    const web = byName['web-20250626_100000.tar.gz'];
    expect(web?.status).toBe('FAIL');
    expect(web?.findings.map((f) => f.code)).toContain('ARCHIVE_CORRUPT');
    expect(web?.findings.map((f) => f.code)).toContain('REDUNDANCY_MISSING');
    expect((await ledger.getRun('run-1'))?.run.status).toBe('FAIL');
  });

  it('runs a rerun of the same run id without duplicating results', async () => {
    const source = join(dir, 'src');
    await mkdir(source);
    await writeArchive(source, 'db-20250626_110000.tar.gz', { 'a.txt': 'alpha' });
    for (let attempt = 0; attempt < 2; attempt++) {
      const discovery = await discoverStage(ctx, {
        runId: 'same',
        trigger: 'cli',
        command: 'integrity',
        sources: [source],
      });
      for (const shard of discovery.shards) await integrityStage(ctx, shard);
    }
    const { report } = await reportStage(ctx, 'same');
    expect(report.backups).toHaveLength(1);
    const detail = await ledger.getRun('same');
    expect(detail?.results.filter((r) => r.stage === 'integrity')).toHaveLength(1);
  });

  it('records a shard whose check failed for good as CHECK_FAILED, never as a pass', async () => {
    const source = join(dir, 'src');
    await mkdir(source);
    await writeArchive(source, 'db-20250626_110000.tar.gz', { 'a.txt': 'alpha' });
    const discovery = await discoverStage(ctx, {
      runId: 'r',
      trigger: 'cli',
      command: 'integrity',
      sources: [source],
    });
    const [shard] = discovery.shards;
    if (!shard) throw new Error('no shard');
    await recordFailureStage(ctx, {
      stage: 'integrity',
      item: shard,
      error: { Error: 'Lambda.Unknown', Cause: 'out of memory' },
    });
    const { report } = await reportStage(ctx, 'r');
    expect(report.status).toBe('FAIL');
    expect(report.backups[0]?.findings).toEqual([
      {
        code: 'CHECK_FAILED',
        severity: 'error',
        message: 'the integrity check could not complete: Lambda.Unknown: out of memory',
      },
    ]);
  });

  it('splits a large catalogue into shards that stay small', async () => {
    const source = join(dir, 'src');
    await mkdir(source);
    const count = SHARD_LIMITS.backups + 5;
    for (let i = 0; i < count; i++) {
      await writeFile(
        join(source, `s${i}-20250626_1100${String(i % 60).padStart(2, '0')}.tar`),
        tar({ f: String(i) }),
      );
    }
    const discovery = await discoverStage(ctx, {
      runId: 'big',
      trigger: 'cli',
      command: 'discover',
      sources: [source],
    });
    expect(discovery.shards.map((s) => s.shard)).toEqual([0, 1]);
    expect(JSON.stringify(discovery.shards).length).toBeLessThan(100);
  });

  it('says at discovery which backups sit in an archive storage class, without reading them', async () => {
    const store = new MemoryStore('s3://vault/db', {
      'db-20250626_110000.tar': { body: 'x', storageClass: 'DEEP_ARCHIVE' },
      'db-20250625_110000.tar': { body: 'y', storageClass: 'GLACIER_IR' },
    });
    const opened = { ...ctx, openSource: () => store };
    await discoverStage(opened, { runId: 'cold', trigger: 'cli', command: 'discover', sources: [store.url] });
    const { report } = await reportStage(opened, 'cold');
    expect(report.backups.map((b) => [b.id, b.status, b.findings.map((f) => f.code)])).toEqual([
      ['s3://vault/db/db-20250625_110000.tar', 'SKIPPED', []],
      ['s3://vault/db/db-20250626_110000.tar', 'WARN', ['ARCHIVED_STORAGE']],
    ]);
  });
});
