import { mkdtemp, readdir, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import { EMBEDDED_TABLE, openLedger } from '../../lib/adapters/embedded-ledger.ts';
import { finding } from '../../lib/core/findings.ts';
import type { Ledger } from '../../lib/core/ledger.ts';
import { backup, credentials, newLedger, result } from './ledger-support.ts';

const scratch = await mkdtemp(join(tmpdir(), 'bv-ledger-sqlite-'));
afterAll(() => rm(scratch, { recursive: true, force: true }));

const a1 = backup('db-20250101.tar.gz', 'db', '2025-01-01T00:00:00Z', 1000);
const a2 = backup('db-20250102.tar.gz', 'db', '2025-01-02T00:00:00Z', 1100);
const a3 = backup('db-20250103.tar.gz', 'db', '2025-01-03T00:00:00Z', 1050);
const w1 = backup('web-20250101.tar.gz', 'web', '2025-01-01T00:00:00Z', 5000, 's3://bucket/web/');
// Ids past DynamoDB's key limits: the ledger bounds its keys, and the store must hold them.
const long = backup(`${'x'.repeat(3000)}-20250101.tar`, `long-${'é'.repeat(900)}`, '2025-01-01T00:00:00Z', 7);

/** Writes the same history through any ledger: reruns, results out of order, older judgements after newer ones. */
async function write(ledger: Ledger): Promise<void> {
  await ledger.startRun({
    runId: 'run-1',
    trigger: 'cli',
    sources: ['/backups'],
    startedAt: '2025-01-04T00:00:00.000Z',
  });
  // Starting again keeps the first record.
  await ledger.startRun({
    runId: 'run-1',
    trigger: 'schedule',
    sources: ['/other'],
    startedAt: '2025-01-09T00:00:00.000Z',
  });
  await ledger.recordCatalogue('run-1', [a1, a2, w1, long]);
  await ledger.recordFirstSeen(a1.id, [{ path: a1.name, sha256: 'a'.repeat(64), size: 1000 }]);
  await ledger.recordFirstSeen(a1.id, [{ path: a1.name, sha256: 'b'.repeat(64), size: 1000 }]);
  await ledger.recordResults([
    result('run-1', a1, 'integrity', 'PASS', '2025-01-04T00:01:00.000Z'),
    result('run-1', a2, 'integrity', 'FAIL', '2025-01-04T00:02:00.000Z', {
      findings: [finding('ARCHIVE_CORRUPT', 'bad', { backup: a2.id })],
    }),
    result('run-1', w1, 'integrity', 'WARN', '2025-01-04T00:03:00.000Z'),
    result('run-1', long, 'integrity', 'PASS', '2025-01-04T00:03:30.000Z'),
    result('run-1', a1, 'restore', 'PASS', '2025-01-04T00:04:00.000Z', { durationMs: 4000 }),
  ]);
  await ledger.recordSeriesRpo('run-1', '2025-01-04T00:05:00.000Z', [
    {
      series: 'db',
      rpoMinutes: 1440,
      newestBackupAgeMinutes: 60,
      exceeded: false,
      newestBackupId: a2.id,
      newestBackupCreatedAt: new Date('2025-01-02T00:00:00.000Z'),
    },
  ]);
  await ledger.recordCopy({
    backupId: a1.id,
    location: 's3://copies/db',
    sha256: 'c'.repeat(64),
    verifiedAt: '2025-01-04T00:06:00.000Z',
    runId: 'run-1',
  });
  await ledger.finishRun('run-1', {
    status: 'FAIL',
    counts: { backups: 4, pass: 2, warn: 1, fail: 1, series: 3 },
    finishedAt: '2025-01-04T00:07:00.000Z',
  });

  await ledger.startRun({
    runId: 'run-2',
    trigger: 'schedule',
    sources: ['/backups'],
    startedAt: '2025-01-05T00:00:00.000Z',
  });
  await ledger.recordCatalogue('run-2', [a1, a2, a3]);
  await ledger.recordResults([
    // Newest verdict wins for the series; within a run the worst.
    result('run-2', a3, 'integrity', 'PASS', '2025-01-05T00:01:00.000Z'),
    result('run-2', a3, 'restore', 'WARN', '2025-01-05T00:02:00.000Z', { durationMs: 9000 }),
    result('run-2', a3, 'restore', 'FAIL', '2025-01-05T00:01:30.000Z', { durationMs: 8000 }),
  ]);
  // An older run's late result and an older RPO judgement do not replace newer ones.
  await ledger.recordResults([result('run-1', a2, 'integrity', 'PASS', '2025-01-04T00:09:00.000Z')]);
  await ledger.recordSeriesRpo('run-0', '2025-01-03T00:00:00.000Z', [
    {
      series: 'db',
      rpoMinutes: 60,
      newestBackupAgeMinutes: 600,
      exceeded: true,
      newestBackupId: a1.id,
      newestBackupCreatedAt: new Date('2025-01-01T00:00:00.000Z'),
    },
  ]);
  await ledger.recordCopy({
    backupId: a1.id,
    location: 's3://copies/db',
    sha256: 'd'.repeat(64),
    verifiedAt: '2025-01-03T00:00:00.000Z',
  });
  await ledger.recordCopy({
    backupId: a1.id,
    location: '/mnt/copies',
    sha256: 'e'.repeat(64),
    verifiedAt: '2025-01-05T00:06:00.000Z',
  });
  await ledger.finishRun('run-2', {
    status: 'ERROR',
    counts: { backups: 3, pass: 1, warn: 0, fail: 1, series: 1 },
    finishedAt: '2025-01-05T00:07:00.000Z',
    error: 'stopped',
  });
  await ledger.finishRun('run-2', {
    status: 'FAIL',
    counts: { backups: 3, pass: 1, warn: 0, fail: 1, series: 1 },
    finishedAt: '2025-01-05T00:08:00.000Z',
  });
}

/** Everything the ledger answers, for comparison (first-seen times are the ledger's clock: left out). */
async function read(ledger: Ledger) {
  return JSON.parse(
    JSON.stringify(await answers(ledger), (key, value) => (key === 'firstSeenAt' ? 'T' : value)),
  );
}

async function answers(ledger: Ledger) {
  const sort = <T>(items: T[]) => [...items].sort((x, y) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1));
  return {
    recent: await ledger.recentRuns(10),
    recentOne: await ledger.recentRuns(1),
    run1: await ledger.getRun('run-1'),
    run2: await ledger.getRun('run-2'),
    missing: await ledger.getRun('run-9'),
    latest: sort(await ledger.latestBySeries()),
    ofSource: sort(await ledger.seriesOfSource('/backups')),
    ofS3: sort(await ledger.seriesOfSource('s3://bucket/web')),
    history: await ledger.seriesHistory('db', 3),
    copies: sort(await ledger.copiesOf(a1.id)),
    notVerified: sort(await ledger.notVerifiedSince(new Date('2025-01-04T00:03:00.000Z'))),
    baseline: await ledger.baseline('db'),
    entry: await ledger.catalogueEntry(a1.id),
    longEntry: await ledger.catalogueEntry(long.id),
    firstSeen: await ledger.firstSeenOf(a1.id),
    finishMissing: await ledger
      .finishRun('never', { status: 'PASS', counts: { backups: 0, pass: 0, warn: 0, fail: 0, series: 0 } })
      .then(
        () => 'finished',
        (error: Error) => error.name,
      ),
  };
}

describe('issue 13: the embedded SQLite ledger', () => {
  it('answers every read as the DynamoDB ledger does after the same writes', async () => {
    const { ledger: dynamo } = await newLedger({ retentionDays: 0 });
    await write(dynamo);
    const expected = await read(dynamo);
    await dynamo.close();

    const embedded = await openLedger(join(scratch, 'same'), { retentionDays: 0 });
    await write(embedded);
    expect(await read(embedded)).toEqual(expected);
    await embedded.close();
  });

  it('copies a ledger folder written by dynalite (LevelDB) on first open, and keeps it', async () => {
    const folder = join(scratch, 'old-leveldb');
    const requireHere = createRequire(import.meta.url);
    const dynalite = requireHere('dynalite') as (options: Record<string, unknown>) => Server;
    const server = dynalite({ path: folder, createTableMs: 0 });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const old = new DynamoDbLedger({
      tableName: EMBEDDED_TABLE,
      clientConfig: {
        endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        region: 'us-east-1',
        credentials,
      },
      retentionDays: 0,
    });
    await old.ensureTable();
    await write(old);
    const expected = await read(old);
    await old.close();
    await new Promise<void>((done) => server.close(() => done()));

    const migrated = await openLedger(folder, { retentionDays: 0 });
    expect(await read(migrated)).toEqual(expected);
    await migrated.close();
    const files = await readdir(folder);
    expect(files).toContain('ledger.sqlite');
    expect(files).not.toContain('ledger.sqlite.partial');
    // Opened again: read from SQLite, not copied twice.
    const again = await openLedger(folder, { retentionDays: 0 });
    expect((await again.recentRuns(10)).map((r) => r.runId)).toEqual(['run-2', 'run-1']);
    await again.close();
  });
});
