import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { checksumReaderOf, S3ChecksumReader } from '../../lib/adapters/s3-checksums.ts';
import { S3ProtectionProbe } from '../../lib/adapters/s3-immutability.ts';
import { S3Store } from '../../lib/adapters/s3-store.ts';
import { openCopyTarget, openStore } from '../../lib/adapters/stores.ts';
import { renderHistory } from '../../lib/cli/history-text.ts';
import { loadHistory } from '../../lib/core/history.ts';
import { immutabilityStage } from '../../lib/core/immutability.ts';
import type { ProtectedRunReport } from '../../lib/core/protection-report.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';
import { discoverStage } from '../../lib/core/stages/discover.ts';
import { integrityStage } from '../../lib/core/stages/integrity.ts';
import { redundancyStage } from '../../lib/core/stages/redundancy.ts';
import { reportStage } from '../../lib/core/stages/report.ts';
import { humanBytes } from '../../lib/core/units.ts';
import { gzip, makeTempDir, packTar, sha256Hex } from '../support/archives.ts';
import { freshLedger } from '../support/ledger.ts';
import { type ProtectionStub, startProtectionStub } from '../support/s3-protection-stub.ts';
import { stampHoursAgo as stamp } from '../support/time.ts';

const s3: S3ClientConfig = {
  endpoint: inject('s3Endpoint'),
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
};
const raw = new S3Client(s3);
const bucket = `bv-imm-${randomBytes(4).toString('hex')}`;
const copies = `${bucket}-copies`;
const name = `db-${stamp(1)}.tar.gz`;
const DAY = 86_400_000;

let archive: Buffer;
let stub: ProtectionStub;
let stubClient: S3Client;
let dir: string;
let ledger: DynamoDbLedger;
let ctx: StageContext;

beforeAll(async () => {
  archive = gzip(await packTar([{ name: 'db.sql', content: 'SELECT 1;\n' }]));
  await raw.send(new CreateBucketCommand({ Bucket: bucket }));
  await raw.send(new CreateBucketCommand({ Bucket: copies }));
  for (const prefix of ['locked', 'open']) {
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${name}`, Body: archive }));
    await raw.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `${prefix}/${name}.sha256`,
        Body: `${sha256Hex(archive)}  ${name}\n`,
      }),
    );
  }
  const retained = { mode: 'COMPLIANCE' as const, retainUntil: new Date(Date.now() + 60 * DAY) };
  stub = await startProtectionStub({
    // The same bucket as s3rver holds, as S3 would describe its protection.
    [bucket]: {
      versioning: 'Enabled',
      objectLock: { defaultRetention: { mode: 'COMPLIANCE', days: 60 } },
      lifecycleRules: [
        '<Rule><ID>purge-open</ID><Filter><Prefix>open/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>3</Days></Expiration></Rule>',
      ],
      objects: {
        [`locked/${name}`]: { size: archive.length, retention: retained },
        [`locked/${name}.sha256`]: { size: 1, retention: retained },
        [`open/${name}`]: { size: archive.length },
        [`open/${name}.sha256`]: { size: 1 },
      },
    },
    // The copy bucket keeps a full-object SHA-256 for the archive's copy, none for the sidecar's.
    [copies]: {
      objects: {
        [`mirror/${name}`]: {
          size: archive.length,
          checksumType: 'FULL_OBJECT',
          checksums: { SHA256: Buffer.from(sha256Hex(archive), 'hex').toString('base64') },
        },
        [`mirror/${name}.sha256`]: { size: 1 },
      },
    },
  });
  stubClient = new S3Client({ ...s3, endpoint: stub.endpoint });
});
afterAll(async () => {
  raw.destroy();
  stubClient.destroy();
  await stub.stop();
});

beforeEach(async () => {
  dir = await makeTempDir('bv-imm-stages-');
  ledger = await freshLedger();
  ctx = {
    ledger,
    runStore: new FolderStore(join(dir, 'runs')),
    openSource: (url) => openStore(url, { s3 }),
    // s3rver holds the bytes; the stub answers the protection calls s3rver does not.
    openProtection: (url) =>
      url.startsWith('s3://') ? new S3ProtectionProbe(new S3Store(url, { client: stubClient })) : undefined,
    now: () => new Date(),
  };
});
afterEach(async () => {
  await ledger.close();
  await rm(dir, { recursive: true, force: true });
});

async function run(runId: string, sources: string[], config: unknown, withRedundancy = false) {
  const discovery = await discoverStage(ctx, {
    runId,
    trigger: 'cli',
    command: 'integrity',
    sources,
    config,
  });
  for (const shard of discovery.shards) {
    await integrityStage(ctx, shard);
    await immutabilityStage(ctx, shard);
  }
  if (withRedundancy) await redundancyStage(ctx, runId, (url) => openCopyTarget(url, { s3 }));
  return (await reportStage(ctx, runId)).report as ProtectedRunReport;
}

describe('issue 15: immutability in the pipeline stages, S3 sources and a folder', () => {
  it('a locked backup passes; an unlocked one with a 3-day lifecycle fails when compliance is required; a folder is not applicable', async () => {
    const folder = join(dir, 'folder');
    await mkdir(folder);
    await writeFile(join(folder, name), archive);
    await writeFile(join(folder, `${name}.sha256`), `${sha256Hex(archive)}  ${name}\n`);
    const report = await run('imm-1', [`s3://${bucket}/locked`, `s3://${bucket}/open`, folder], {
      defaults: { rpoMinutes: 0, immutability: { require: 'compliance', minRetentionDays: 30 } },
    });
    const locked = report.backups.find((b) => b.id === `s3://${bucket}/locked/${name}`);
    const open = report.backups.find((b) => b.id === `s3://${bucket}/open/${name}`);
    const local = report.backups.find((b) => b.id === join(folder, name));
    expect(locked?.status).toBe('PASS');
    expect(locked?.immutability).toMatchObject({
      status: 'PASS',
      require: 'compliance',
      versioning: 'Enabled',
      objectLock: true,
      objects: 2,
      locked: 2,
      compliance: 2,
    });
    expect(open?.status).toBe('FAIL');
    expect(open?.findings.map((f) => [f.code, f.severity]).sort()).toEqual([
      ['IMMUTABILITY_MISSING', 'error'],
      ['RETENTION_SHORT', 'error'],
    ]);
    expect(open?.findings.find((f) => f.code === 'RETENTION_SHORT')?.message).toContain('purge-open');
    expect(open?.immutability).toMatchObject({ status: 'FAIL', locked: 0 });
    expect(local?.status).toBe('PASS');
    expect(local?.immutability).toMatchObject({ status: 'NOT_APPLICABLE' });
    // The ledger keeps the verdicts, which `history` reads per series.
    const results = (await ledger.getRun('imm-1'))?.results.filter((r) => r.stage === 'immutability') ?? [];
    expect(results.map((r) => r.status).sort()).toEqual(['FAIL', 'PASS', 'SKIPPED']);
    const series = await ledger.latestBySeries();
    expect(series.find((s) => s.series.endsWith('/open/db'))?.stages.immutability?.status).toBe('FAIL');
    const history = renderHistory(await loadHistory(ledger), { width: 120, unicode: false });
    expect(history).toContain('immutability: FAIL (run imm-1: its report says what can delete the backups)');
    expect(history).toContain('immutability: PASS (run imm-1)');
  });

  it('a protection read that is refused is CHECK_FAILED naming the permission, never a pass', async () => {
    const facts = stub.buckets[bucket];
    if (facts) facts.denied = ['retention'];
    try {
      const report = await run('imm-denied', [`s3://${bucket}/locked`], {
        defaults: { rpoMinutes: 0, immutability: { require: 'governance' } },
      });
      const backup = report.backups[0];
      expect(backup?.status).toBe('FAIL');
      expect(backup?.findings.map((f) => f.code)).toEqual(['CHECK_FAILED']);
      expect(backup?.findings[0]?.message).toContain('s3:GetObjectRetention');
      expect(backup?.immutability?.status).toBe('FAIL');
    } finally {
      if (facts) delete facts.denied;
    }
  });

  it('without an immutability policy nothing is asked of the bucket', async () => {
    const before = stub.requests.length;
    const report = await run('imm-2', [`s3://${bucket}/open`], { defaults: { rpoMinutes: 0 } });
    expect(stub.requests.length).toBe(before);
    expect(report.backups[0]?.immutability).toBeUndefined();
    expect(report.backups[0]?.status).toBe('PASS');
  });

  it('under require "none" the same unlocked backup only warns', async () => {
    const report = await run('imm-3', [`s3://${bucket}/open`], {
      defaults: { rpoMinutes: 0, immutability: { minRetentionDays: 7 } },
    });
    expect(report.backups[0]?.status).toBe('WARN');
    // Versioning counts under "none": what is left is the lifecycle rule.
    expect(report.backups[0]?.findings.map((f) => [f.code, f.severity])).toEqual([
      ['RETENTION_SHORT', 'warning'],
    ]);
  });
});

describe('issue 15: redundancy proves copies by stored checksums before reading them', () => {
  const config = { defaults: { rpoMinutes: 0, redundancy: { targets: [`s3://${copies}/mirror`] } } };

  it('the archive proven by its FULL_OBJECT SHA-256, the sidecar (no checksum) by reading: bytes not downloaded reported', async () => {
    ctx.checksumsOf = (store) =>
      store instanceof S3Store && store.bucket === copies
        ? new S3ChecksumReader(new S3Store(store.url, { client: stubClient }))
        : undefined;
    const report = await run('copy-1', [`s3://${bucket}/locked`], config, true);
    const backup = report.backups[0];
    expect(backup?.status).toBe('PASS');
    expect(backup?.copies).toEqual([
      {
        target: `s3://${copies}/mirror`,
        verified: true,
        provenByChecksum: 1,
        provenByRead: 1,
        comparisons: ['SHA256 FULL_OBJECT = the SHA-256 the integrity pass computed'],
        bytesNotDownloaded: archive.length,
      },
    ]);
    expect(report.copyProof).toEqual({
      provenByChecksum: 1,
      provenByRead: 1,
      bytesNotDownloaded: archive.length,
    });
    // The run's ledger item keeps the totals, so `history` says how the copies were proven.
    const history = renderHistory(await loadHistory(ledger), { width: 120, unicode: false });
    expect(history).toContain(
      `Copies (run copy-1): 1 object(s) proven by stored checksum, 1 read back; ${humanBytes(archive.length)} not downloaded`,
    );
  });

  it('a stored checksum that disagrees proves nothing: the copy is read and judged on its bytes', async () => {
    const wrong = stub.buckets[copies]?.objects[`mirror/${name}`];
    const saved = wrong?.checksums;
    if (wrong) wrong.checksums = { SHA256: Buffer.alloc(32).toString('base64') };
    try {
      ctx.checksumsOf = (store) =>
        store instanceof S3Store && store.bucket === copies
          ? new S3ChecksumReader(new S3Store(store.url, { client: stubClient }))
          : undefined;
      const report = await run('copy-2', [`s3://${bucket}/locked`], config, true);
      expect(report.backups[0]?.status).toBe('PASS');
      expect(report.backups[0]?.copies?.[0]).toMatchObject({
        provenByChecksum: 0,
        provenByRead: 2,
        bytesNotDownloaded: 0,
      });
    } finally {
      if (wrong && saved) wrong.checksums = saved;
    }
  });

  it('s3rver keeps no checksum for the copies the real code makes: every copy is proven by reading it', async () => {
    ctx.checksumsOf = checksumReaderOf;
    const report = await run('copy-3', [`s3://${bucket}/locked`], config, true);
    expect(report.backups[0]?.status).toBe('PASS');
    expect(report.backups[0]?.copies?.[0]).toMatchObject({
      verified: true,
      provenByChecksum: 0,
      provenByRead: 2,
      bytesNotDownloaded: 0,
    });
  });
});
