import { createServer } from 'node:net';
import { DescribeTableCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import { LEDGER_TABLE } from '../../lib/adapters/ledger-schema.ts';
import type { RpoCheck } from '../../lib/core/compliance.ts';
import { LedgerError } from '../../lib/core/errors.ts';
import { finding } from '../../lib/core/findings.ts';
import type { StageResultRecord } from '../../lib/core/ledger.ts';
import { backup, countingClient, credentials, newLedger, result, snapshot } from './ledger-support.ts';

describe('ledger table', () => {
  it('is created with the fixed key, index and billing names, and ensureTable can run again', async () => {
    const { ledger, client, tableName } = await newLedger();
    await ledger.ensureTable();
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    expect(Table?.KeySchema).toEqual([
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    const indexes = (Table?.GlobalSecondaryIndexes ?? []).map((i) => ({
      name: i.IndexName,
      keys: i.KeySchema?.map((k) => k.AttributeName),
      projection: i.Projection?.ProjectionType,
    }));
    expect(indexes.sort((a, b) => String(a.name).localeCompare(String(b.name)))).toEqual([
      { name: 'gsi1', keys: ['gsi1pk', 'gsi1sk'], projection: 'ALL' },
      { name: 'gsi2', keys: ['gsi2pk', 'gsi2sk'], projection: 'ALL' },
    ]);
    expect(Table?.BillingModeSummary?.BillingMode ?? 'PAY_PER_REQUEST').toBe('PAY_PER_REQUEST');
    expect(LEDGER_TABLE.ttlAttribute).toBe('expiresAt');
    await ledger.close();
  });
});

describe('access patterns', async () => {
  const { ledger, client, commands, tableName } = await newLedger();
  const a1 = backup('db-20250101.tar.gz', 'db', '2025-01-01T00:00:00Z', 1000);
  const a2 = backup('db-20250102.tar.gz', 'db', '2025-01-02T00:00:00Z', 1100);
  const w1 = backup('web-20250101.tar.gz', 'web', '2025-01-01T00:00:00Z', 5000);
  await ledger.startRun({
    runId: 'run-1',
    trigger: 'schedule',
    sources: ['/backups'],
    startedAt: '2025-01-03T00:00:00.000Z',
  });
  await ledger.recordCatalogue('run-1', [a1, a2, w1]);
  await ledger.recordResults([
    result('run-1', a1, 'integrity', 'PASS', '2025-01-03T00:01:00.000Z'),
    result('run-1', a2, 'integrity', 'FAIL', '2025-01-03T00:02:00.000Z'),
    result('run-1', w1, 'integrity', 'PASS', '2025-01-03T00:03:00.000Z'),
    result('run-1', a1, 'restore', 'PASS', '2025-01-03T00:04:00.000Z', { durationMs: 4000 }),
  ]);
  await ledger.recordCopy({
    backupId: a1.id,
    location: 's3://copies/db',
    sha256: 'a'.repeat(64),
    verifiedAt: '2025-01-03T00:05:00.000Z',
  });
  await ledger.recordCopy({
    backupId: a1.id,
    location: '/mnt/copies',
    sha256: 'a'.repeat(64),
    verifiedAt: '2025-01-03T00:06:00.000Z',
  });
  await ledger.finishRun('run-1', {
    status: 'FAIL',
    counts: { backups: 3, pass: 2, warn: 0, fail: 1, series: 2 },
    finishedAt: '2025-01-03T00:07:00.000Z',
  });
  await ledger.startRun({
    runId: 'run-2',
    trigger: 'cli',
    sources: ['/backups'],
    startedAt: '2025-01-04T00:00:00.000Z',
  });
  await ledger.recordResults([result('run-2', a2, 'integrity', 'PASS', '2025-01-04T00:01:00.000Z')]);

  const onlyOneQuery = async <T>(read: () => Promise<T>): Promise<T> => {
    commands.length = 0;
    const value = await read();
    expect(commands).toEqual(['QueryCommand']);
    return value;
  };

  it('recent runs: one Query, newest first', async () => {
    const runs = await onlyOneQuery(() => ledger.recentRuns(10));
    expect(runs.map((r) => [r.runId, r.status])).toEqual([
      ['run-2', 'RUNNING'],
      ['run-1', 'FAIL'],
    ]);
    expect(runs[1]?.counts).toEqual({ backups: 3, pass: 2, warn: 0, fail: 1, series: 2 });
    expect(await onlyOneQuery(() => ledger.recentRuns(1))).toHaveLength(1);
  });

  it('everything of one run: one Query returns the run and all its results', async () => {
    const detail = await onlyOneQuery(() => ledger.getRun('run-1'));
    expect(detail?.run).toMatchObject({
      runId: 'run-1',
      trigger: 'schedule',
      status: 'FAIL',
      finishedAt: '2025-01-03T00:07:00.000Z',
    });
    expect(detail?.results.map((r) => `${r.backupId}:${r.stage}:${r.status}`).sort()).toEqual([
      `${a1.id}:integrity:PASS`,
      `${a1.id}:restore:PASS`,
      `${a2.id}:integrity:FAIL`,
      `${w1.id}:integrity:PASS`,
    ]);
    expect(await onlyOneQuery(() => ledger.getRun('no-such-run'))).toBeUndefined();
  });

  it('latest status of every series: one Query; the newest run replaces an older verdict', async () => {
    const series = await onlyOneQuery(() => ledger.latestBySeries());
    const db = series.find((s) => s.series === 'db');
    const web = series.find((s) => s.series === 'web');
    expect(db?.stages.integrity).toMatchObject({ status: 'PASS', runId: 'run-2', backupId: a2.id });
    expect(db?.stages.restore).toMatchObject({ status: 'PASS', runId: 'run-1', durationMs: 4000 });
    expect(db?.status).toBe('PASS');
    expect(db?.latestBackup).toEqual({ backupId: a2.id, createdAt: '2025-01-02T00:00:00.000Z' });
    expect(web?.status).toBe('PASS');
    expect(series).toHaveLength(2);
  });

  it('history of one series: one Query, newest first, limited', async () => {
    const history = await onlyOneQuery(() => ledger.seriesHistory('db', 10));
    expect(history.map((r) => `${r.runId}:${r.stage}:${r.backupId}`)).toEqual([
      `run-2:integrity:${a2.id}`,
      `run-1:restore:${a1.id}`,
      `run-1:integrity:${a2.id}`,
      `run-1:integrity:${a1.id}`,
    ]);
    const two = await onlyOneQuery(() => ledger.seriesHistory('db', 2));
    expect(two.map((r) => r.runId)).toEqual(['run-2', 'run-1']);
  });

  it('copies of one backup: one Query', async () => {
    const copies = await onlyOneQuery(() => ledger.copiesOf(a1.id));
    expect(copies.map((c) => c.location).sort()).toEqual(['/mnt/copies', 's3://copies/db']);
    expect(await onlyOneQuery(() => ledger.copiesOf(a2.id))).toEqual([]);
  });

  it('backups not verified since a date: one Query, never-verified ones included', async () => {
    const stale = await onlyOneQuery(() => ledger.notVerifiedSince(new Date('2025-01-03T00:03:30.000Z')));
    // a1 verified 00:04 (restore), a2 verified on the 4th, w1 verified 00:03: only w1 is stale.
    expect(stale.map((b) => b.backupId)).toEqual([w1.id]);
    const all = await onlyOneQuery(() => ledger.notVerifiedSince(new Date('2030-01-01T00:00:00.000Z')));
    expect(all.map((b) => b.backupId).sort()).toEqual([a1.id, a2.id, w1.id].sort());
    expect(all.find((b) => b.backupId === a2.id)).toMatchObject({
      series: 'db',
      bytes: 1100,
      lastVerifiedRunId: 'run-2',
    });
  });

  it('no access pattern ever scans', async () => {
    commands.length = 0;
    await ledger.recentRuns(5);
    await ledger.getRun('run-1');
    await ledger.latestBySeries();
    await ledger.seriesHistory('web', 5);
    await ledger.copiesOf(w1.id);
    await ledger.notVerifiedSince(new Date());
    await ledger.seriesOfSource('/backups');
    await ledger.verificationsOf('db');
    expect(commands).toHaveLength(8);
    expect(commands.every((c) => c === 'QueryCommand')).toBe(true);
  });

  it('results and runs carry the TTL attribute; catalogue, checksums, copies, series and baselines do not', async () => {
    await ledger.recordFirstSeen(a1.id, [{ path: a1.name, sha256: 'b'.repeat(64), size: 1000 }]);
    const items = await snapshot(client, tableName);
    const typeOf = (i: Record<string, unknown>) => (i.type as { S: string }).S;
    const expiring = items.filter((i) => i.expiresAt !== undefined).map(typeOf);
    expect(new Set(expiring)).toEqual(new Set(['run', 'result']));
    for (const type of ['backup', 'checksum', 'copy', 'series', 'baseline']) {
      const ofType = items.filter((i) => typeOf(i) === type);
      expect(ofType.length, type).toBeGreaterThan(0);
      expect(
        ofType.every((i) => i.expiresAt === undefined),
        type,
      ).toBe(true);
    }
    const resultItem = items.find(
      (i) => typeOf(i) === 'result' && (i.at as { S: string }).S === '2025-01-03T00:01:00.000Z',
    );
    expect(Number((resultItem?.expiresAt as { N: string } | undefined)?.N)).toBe(
      Date.parse('2025-01-03T00:01:00.000Z') / 1000 + 30 * 86_400,
    );
    expect(
      items.every((i) => i.expiresAt === undefined || (i.expiresAt as { N?: string }).N !== undefined),
    ).toBe(true);
  });
});

describe('idempotency', () => {
  it('recording the same run twice leaves exactly the same items', async () => {
    let clock = Date.parse('2025-02-01T00:00:00Z');
    const tick = () => {
      clock += 1000;
      return new Date(clock);
    };
    const { ledger, client, tableName } = await newLedger({ now: tick });
    const b1 = backup('app-20250130.tgz', 'app', '2025-01-30T00:00:00Z', 2000);
    const b2 = backup('app-20250131.tgz', 'app', '2025-01-31T00:00:00Z', 2100);
    const replay = async () => {
      await ledger.startRun({ runId: 'run-x', trigger: 'console', sources: ['/backups'] });
      await ledger.recordCatalogue('run-x', [b1, b2]);
      await ledger.recordFirstSeen(b1.id, [{ path: b1.name, sha256: 'c'.repeat(64), size: 2000 }]);
      await ledger.recordResults([
        result('run-x', b1, 'integrity', 'PASS', '2025-02-01T00:10:00.000Z'),
        result('run-x', b2, 'integrity', 'WARN', '2025-02-01T00:11:00.000Z', {
          findings: [finding('NO_REFERENCE_CHECKSUM', 'first sight', { backup: b2.id })],
        }),
        result('run-x', b2, 'restore', 'PASS', '2025-02-01T00:12:00.000Z', { durationMs: 900 }),
      ]);
      await ledger.recordCopy({
        backupId: b1.id,
        location: '/copies',
        sha256: 'c'.repeat(64),
        verifiedAt: '2025-02-01T00:13:00.000Z',
      });
      await ledger.finishRun('run-x', {
        status: 'WARN',
        counts: { backups: 2, pass: 1, warn: 1, fail: 0, series: 1 },
        finishedAt: '2025-02-01T00:14:00.000Z',
      });
    };
    await replay();
    const first = await snapshot(client, tableName);
    await replay();
    const second = await snapshot(client, tableName);
    expect(second).toEqual(first);
    expect(first.length).toBe(1 + 3 + 2 + 1 + 1 + 1 + 1); // run, results, backups, checksum, copy, series, baseline
    const baseline = await ledger.baseline('app');
    expect(baseline.sizes.map((p) => p.bytes)).toEqual([2000, 2100]);
    expect(baseline.restores).toHaveLength(1);
    await ledger.close();
  });

  it('regression: refreshing the catalogue keeps the verification state (catalogue is not a blind put)', async () => {
    const { ledger } = await newLedger();
    const b = backup('x-20250101.tar', 'x', '2025-01-01T00:00:00Z', 10);
    await ledger.recordCatalogue('r1', [b]);
    await ledger.recordResults([result('r1', b, 'integrity', 'PASS', '2025-03-01T00:00:00.000Z')]);
    await ledger.recordCatalogue('r2', [{ ...b, bytes: 11, objects: 2 }]);
    const entry = await ledger.catalogueEntry(b.id);
    expect(entry).toMatchObject({
      bytes: 11,
      objects: 2,
      lastVerifiedAt: '2025-03-01T00:00:00.000Z',
      firstSeenRunId: 'r1',
    });
    expect((await ledger.notVerifiedSince(new Date('2025-02-01T00:00:00Z'))).map((e) => e.backupId)).toEqual(
      [],
    );
    // An older verification arriving late does not move the time back.
    await ledger.recordResults([result('r0', b, 'integrity', 'PASS', '2025-02-15T00:00:00.000Z')]);
    expect((await ledger.catalogueEntry(b.id))?.lastVerifiedAt).toBe('2025-03-01T00:00:00.000Z');
    await ledger.close();
  });

  it('starting a run id again keeps the first record; finishing a run never started is a LedgerError', async () => {
    const { ledger } = await newLedger();
    const first = await ledger.startRun({
      runId: 'r',
      trigger: 'schedule',
      sources: ['s3://a'],
      startedAt: '2025-01-01T00:00:00.000Z',
    });
    const again = await ledger.startRun({
      runId: 'r',
      trigger: 'schedule',
      sources: ['s3://a'],
      startedAt: '2025-01-01T00:09:00.000Z',
    });
    expect(again).toEqual(first);
    await expect(
      ledger.finishRun('never-started', {
        status: 'PASS',
        counts: { backups: 0, pass: 0, warn: 0, fail: 0, series: 0 },
      }),
    ).rejects.toThrow(/never started/);
    await ledger.close();
  });
});

describe('concurrency', () => {
  it('two runs interleaved on the same table both complete, and the baseline keeps every point', async () => {
    const { ledger: one, tableName } = await newLedger();
    const other = new DynamoDbLedger({ tableName, client: countingClient().client, retentionDays: 30 });
    const backups = Array.from({ length: 16 }, (_, i) =>
      backup(
        `db-202501${String(i + 1).padStart(2, '0')}.tar.gz`,
        'db',
        `2025-01-${String(i + 1).padStart(2, '0')}T00:00:00Z`,
        1000 + i,
      ),
    );
    await Promise.all([
      one.startRun({ runId: 'run-a', trigger: 'schedule', sources: ['/backups'] }),
      other.startRun({ runId: 'run-b', trigger: 'cli', sources: ['/backups'] }),
    ]);
    await Promise.all([one.recordCatalogue('run-a', backups), other.recordCatalogue('run-b', backups)]);
    // Each backup's result goes in on its own call, alternating runs, all at once: the baseline
    // item is contended by 32 writers.
    await Promise.all(
      backups.flatMap((b, i) => [
        one.recordResults([
          result('run-a', b, 'integrity', 'PASS', `2025-02-01T00:00:${String(i).padStart(2, '0')}.000Z`),
        ]),
        other.recordResults([
          result('run-b', b, 'restore', 'PASS', `2025-02-01T00:01:${String(i).padStart(2, '0')}.000Z`, {
            durationMs: 100 + i,
          }),
        ]),
      ]),
    );
    const baseline = await one.baseline('db');
    expect(baseline.sizes.map((p) => p.bytes).sort()).toEqual(backups.map((b) => b.bytes).sort());
    expect(baseline.restores.map((p) => p.durationMs).sort()).toEqual(backups.map((_, i) => 100 + i).sort());
    expect(baseline.version).toBeGreaterThanOrEqual(2);
    const [a, b] = await Promise.all([one.getRun('run-a'), other.getRun('run-b')]);
    expect(a?.results).toHaveLength(16);
    expect(b?.results).toHaveLength(16);
    expect(a?.results.every((r) => r.stage === 'integrity')).toBe(true);
    expect(b?.results.every((r) => r.stage === 'restore')).toBe(true);
    const [status] = await one.latestBySeries();
    expect(status?.stages.integrity?.runId).toBe('run-a');
    expect(status?.stages.restore?.runId).toBe('run-b');
    await Promise.all([one.close(), other.close()]);
  });

  it('two runs seeing a path first at once: one checksum wins and the other is told the winner', async () => {
    const { ledger: one, tableName } = await newLedger();
    const other = new DynamoDbLedger({ tableName, client: countingClient().client });
    const paths = Array.from({ length: 30 }, (_, i) => `dir/file-${i}`);
    const [fromOne, fromOther] = await Promise.all([
      one.recordFirstSeen(
        'b',
        paths.map((path) => ({ path, sha256: '1'.repeat(64), size: 1 })),
      ),
      other.recordFirstSeen(
        'b',
        paths.map((path) => ({ path, sha256: '2'.repeat(64), size: 1 })),
      ),
    ]);
    expect(fromOne.length + fromOther.length).toBe(30);
    const stored = await one.recordFirstSeen(
      'b',
      paths.map((path) => ({ path, sha256: '3'.repeat(64), size: 1 })),
    );
    for (const s of stored) {
      const winner = s.sha256 === '1'.repeat(64) ? fromOther : fromOne;
      expect(winner.find((p) => p.path === s.path)?.sha256).toBe(s.sha256);
    }
    await Promise.all([one.close(), other.close()]);
  });
});

describe('series RPO verdicts', () => {
  const check = (series: string, age: number, exceeded: boolean): RpoCheck => ({
    series,
    rpoMinutes: 1440,
    newestBackupId: `/b/${series}-x.tar`,
    newestBackupCreatedAt: new Date('2025-01-01T00:00:00Z'),
    newestBackupAgeMinutes: age,
    exceeded,
  });

  it("keeps each series' newest run's verdict beside its status; an older run never replaces it", async () => {
    const { ledger } = await newLedger();
    await ledger.recordSeriesRpo('run-2', '2025-01-10T00:00:00.000Z', [check('db', 9 * 1440, true)]);
    await ledger.recordSeriesRpo('run-1', '2025-01-02T00:00:00.000Z', [check('db', 1440 + 60, false)]);
    const b = backup('web-1.tar', 'web', '2025-01-10T00:00:00Z', 7);
    await ledger.recordResults([result('run-2', b, 'integrity', 'PASS', '2025-01-10T00:05:00.000Z')]);
    await ledger.recordSeriesRpo('run-2', '2025-01-10T00:00:00.000Z', [check('web', 5, false)]);
    const bySeries = Object.fromEntries((await ledger.latestBySeries()).map((s) => [s.series, s]));
    expect(bySeries.db?.rpo).toEqual({
      runId: 'run-2',
      at: '2025-01-10T00:00:00.000Z',
      rpoMinutes: 1440,
      newestBackupAgeMinutes: 9 * 1440,
      exceeded: true,
    });
    // A series known only from its RPO has no stage verdict yet.
    expect(bySeries.db?.status).toBeNull();
    expect(bySeries.web?.status).toBe('PASS');
    expect(bySeries.web?.rpo?.exceeded).toBe(false);
    await ledger.close();
  });
});

describe('first-seen checksums (the CHECKSUM_CHANGED reference)', () => {
  it('returns the first checksum when a path is recorded again with another one', async () => {
    const { ledger } = await newLedger({ now: () => new Date('2025-05-05T05:05:05.000Z') });
    const before = await ledger.recordFirstSeen('s3://b/db.tar', [
      { path: 'db.tar', sha256: 'a'.repeat(64), size: 10 },
      { path: 'other', sha256: 'e'.repeat(64), size: 1 },
    ]);
    expect(before).toEqual([]);
    const later = await ledger.recordFirstSeen('s3://b/db.tar', [
      { path: 'db.tar', sha256: 'f'.repeat(64), size: 10 },
      { path: 'new', sha256: 'd'.repeat(64), size: 2 },
    ]);
    expect(later).toEqual([
      { path: 'db.tar', sha256: 'a'.repeat(64), size: 10, firstSeenAt: '2025-05-05T05:05:05.000Z' },
    ]);
    const third = await ledger.recordFirstSeen('s3://b/db.tar', [
      { path: 'db.tar', sha256: 'f'.repeat(64), size: 10 },
    ]);
    expect(third[0]?.sha256).toBe('a'.repeat(64));
    await ledger.close();
  });
});

describe('volume and size limits', () => {
  it('records 120 results in batches and reads them back in one Query; huge findings are cut, not lost silently', async () => {
    const { ledger, commands } = await newLedger();
    const many: StageResultRecord[] = Array.from({ length: 120 }, (_, i) =>
      result(
        'big',
        backup(`f-${i}.tar`, 'f', '2025-01-01T00:00:00Z', i + 1),
        'integrity',
        'PASS',
        '2025-01-02T00:00:00.000Z',
      ),
    );
    const noisy = Array.from({ length: 20_000 }, (_, i) =>
      finding('UNLISTED_OBJECT', `object number ${i} is not listed in SHA256SUMS`, {
        backup: 'x',
        object: `some/deep/path/${i}`,
      }),
    );
    (many[0] as StageResultRecord).findings = noisy;
    await ledger.startRun({ runId: 'big', trigger: 'cli', sources: [] });
    commands.length = 0;
    await ledger.recordResults(many);
    expect(commands.filter((c) => c === 'BatchWriteItemCommand')).toHaveLength(5);
    commands.length = 0;
    const detail = await ledger.getRun('big');
    expect(commands.filter((c) => c === 'QueryCommand').length).toBeGreaterThanOrEqual(1);
    expect(detail?.results).toHaveLength(120);
    const cut = detail?.results.find((r) => r.backupId === many[0]?.backupId);
    expect(cut?.findings[0]).toEqual(noisy[0]);
    // The kept findings, then one that counts the rest.
    expect((cut?.findings.length ?? 0) - 1 + (cut?.findingsOmitted ?? 0)).toBe(20_000);
    expect(cut?.findingsOmitted).toBeGreaterThan(0);
    expect(cut?.findings.at(-1)).toMatchObject({
      code: 'UNLISTED_OBJECT',
      message: expect.stringContaining(
        `${cut?.findingsOmitted} more findings (UNLISTED_OBJECT x${cut?.findingsOmitted}) were left out`,
      ),
    });
    await ledger.close();
  });

  it('issue 10: findings budget counts UTF-8 bytes: 20,000 findings with CJK names fit an item, and the omitted ones are counted in a finding', async () => {
    const { ledger } = await newLedger();
    const b = backup('cjk-20250101.tar.gz', 'cjk', '2025-01-01T00:00:00Z', 1);
    const noisy = Array.from({ length: 20_000 }, (_, i) =>
      finding(
        i % 2 ? 'UNLISTED_OBJECT' : 'CHECKSUM_MISMATCH',
        `データベース/バックアップ/ファイル-${i}.csv が一致しません`,
        {
          backup: b.id,
          object: `データ/${'長い名前'.repeat(4)}/${i}`,
        },
      ),
    );
    // Far below 200,000 characters of JSON, far above 400 KB of UTF-8: the old budget let it through.
    expect(Buffer.byteLength(JSON.stringify(noisy.slice(0, 1000)))).toBeGreaterThan(100_000);
    await ledger.startRun({ runId: 'cjk', trigger: 'cli', sources: [] });
    await ledger.recordResults([
      result('cjk', b, 'integrity', 'FAIL', '2025-01-02T00:00:00.000Z', { findings: noisy }),
    ]);
    const [stored] = (await ledger.getRun('cjk'))?.results ?? [];
    expect(Buffer.byteLength(JSON.stringify(stored?.findings))).toBeLessThanOrEqual(200_000);
    expect(stored?.findings.slice(0, 3)).toEqual(noisy.slice(0, 3));
    const omitted = stored?.findingsOmitted ?? 0;
    expect(omitted).toBeGreaterThan(15_000);
    expect((stored?.findings.length ?? 0) - 1 + omitted).toBe(20_000);
    const note = stored?.findings.at(-1);
    expect(note?.code).toBe('CHECKSUM_MISMATCH');
    expect(note?.severity).toBe('error');
    expect(note?.message).toMatch(
      new RegExp(
        `^${omitted} more findings \\((CHECKSUM_MISMATCH|UNLISTED_OBJECT) x\\d+, (CHECKSUM_MISMATCH|UNLISTED_OBJECT) x\\d+\\) were left out`,
      ),
    );
    await ledger.close();
  });

  it('issue 10: a backup id, run id and series over 1,000 bytes stay within every key and index key limit', async () => {
    const { ledger, client, tableName } = await newLedger();
    const long = `${'very-long-folder-name/'.repeat(60)}db-20250101.tar.gz`;
    expect(Buffer.byteLength(long)).toBeGreaterThan(1300);
    const series = `series-${'x'.repeat(1200)}`;
    const b = backup(long, series, '2025-01-01T00:00:00Z', 10);
    const runId = `run-${'r'.repeat(1100)}`;
    await ledger.startRun({
      runId,
      trigger: 'cli',
      sources: ['/backups'],
      startedAt: '2025-01-02T00:00:00.000Z',
    });
    await ledger.recordCatalogue(runId, [b]);
    await ledger.recordResults([
      result(runId, b, 'integrity', 'PASS', '2025-01-02T00:01:00.000Z'),
      result(runId, b, 'restore', 'PASS', '2025-01-02T00:02:00.000Z'),
    ]);
    await ledger.recordSeriesRpo(runId, '2025-01-02T00:03:00.000Z', [
      {
        series,
        rpoMinutes: 1440,
        newestBackupId: b.id,
        newestBackupCreatedAt: b.createdAt,
        newestBackupAgeMinutes: 60,
        exceeded: false,
      } satisfies RpoCheck,
    ]);
    expect((await ledger.catalogueEntry(b.id))?.backupId).toBe(b.id);
    expect((await ledger.getRun(runId))?.results.map((r) => r.backupId)).toEqual([b.id, b.id]);
    expect((await ledger.seriesHistory(series, 10)).map((r) => r.stage).sort()).toEqual([
      'integrity',
      'restore',
    ]);
    expect((await ledger.latestBySeries()).map((s) => s.series)).toEqual([series]);
    expect((await ledger.notVerifiedSince(new Date('2030-01-01T00:00:00Z'))).map((e) => e.backupId)).toEqual([
      b.id,
    ]);
    // dynalite checks only the table's own keys: every item's index keys are checked here.
    const { Items = [] } = await client.send(new ScanCommand({ TableName: tableName }));
    expect(Items.length).toBeGreaterThan(4);
    const oversized: string[] = [];
    for (const item of Items) {
      for (const [attribute, limit] of [
        ['pk', 2048],
        ['sk', 1024],
        ['gsi1pk', 2048],
        ['gsi1sk', 1024],
        ['gsi2pk', 2048],
        ['gsi2sk', 1024],
      ] as const) {
        const value = item[attribute]?.S;
        if (value !== undefined && Buffer.byteLength(value) > limit)
          oversized.push(`${item.type?.S} ${attribute}: ${Buffer.byteLength(value)} bytes`);
      }
    }
    expect(oversized).toEqual([]);
    await ledger.close();
  });
});

describe('failures are LedgerErrors', () => {
  it('an unreachable endpoint', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const ledger = new DynamoDbLedger({
      tableName: 'nowhere',
      clientConfig: {
        endpoint: `http://127.0.0.1:${port}`,
        region: 'us-east-1',
        credentials,
        maxAttempts: 1,
      },
    });
    const error = await ledger.recentRuns(5).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LedgerError);
    expect((error as LedgerError).message).toMatch(
      /cannot be reached at http:\/\/127\.0\.0\.1:\d+.*ECONNREFUSED/,
    );
    expect((error as LedgerError).location).toBe('dynamodb://nowhere');
    const write = await ledger
      .recordResults([
        result(
          'r',
          backup('a.tar', 'a', '2025-01-01T00:00:00Z', 1),
          'integrity',
          'PASS',
          '2025-01-01T00:00:00Z',
        ),
      ])
      .catch((e: unknown) => e);
    expect(write).toBeInstanceOf(LedgerError);
    await ledger.close();
  });

  it('a table that does not exist', async () => {
    const { client } = countingClient();
    const ledger = new DynamoDbLedger({ tableName: 'missing-table', client });
    await expect(ledger.startRun({ runId: 'r', trigger: 'cli', sources: [] })).rejects.toThrow(
      /table "missing-table" does not exist/,
    );
    await expect(ledger.startRun({ runId: 'r', trigger: 'cli', sources: [] })).rejects.toBeInstanceOf(
      LedgerError,
    );
  });

  it('a table of another shape', async () => {
    const { client } = countingClient();
    const { CreateTableCommand } = await import('@aws-sdk/client-dynamodb');
    await client
      .send(
        new CreateTableCommand({
          TableName: 'not-a-ledger',
          AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      )
      .catch(() => undefined);
    const ledger = new DynamoDbLedger({ tableName: 'not-a-ledger', client });
    await expect(ledger.ensureTable()).rejects.toThrow(/is not a backup-validator ledger/);
  });

  it('retention 0 keeps results forever (no TTL attribute)', async () => {
    const { ledger, client, tableName } = await newLedger({ retentionDays: 0 });
    await ledger.startRun({ runId: 'r', trigger: 'cli', sources: [] });
    await ledger.recordResults([
      result(
        'r',
        backup('a.tar', 'a', '2025-01-01T00:00:00Z', 1),
        'integrity',
        'PASS',
        '2025-01-01T00:00:00Z',
      ),
    ]);
    const items = await snapshot(client, tableName);
    expect(items.length).toBeGreaterThan(0);
    expect(items.filter((i) => i.expiresAt !== undefined)).toEqual([]);
    await ledger.close();
  });
});

describe('series of one source (issue 9.3: what vanished is known)', () => {
  it('one Query returns the outer series recorded for that source with their newest backup, no other source', async () => {
    const { ledger, commands } = await newLedger();
    const db1 = backup('db-20250101.tar', '/backups/db', '2025-01-01T00:00:00Z', 10);
    const db2 = backup('db-20250102.tar', '/backups/db', '2025-01-02T00:00:00Z', 10);
    const nested = {
      ...backup('night/20250102/inner.tar', '/backups/night/inner', '2025-01-02T00:00:00Z', 10),
      parentId: '/backups/night/20250102/',
    };
    const other = backup('db-20250102.tar', '/other/db', '2025-01-02T00:00:00Z', 10, '/other');
    await ledger.recordCatalogue('r1', [db1, db2, nested, other]);
    // A rerun with only the older backup changes nothing.
    await ledger.recordCatalogue('r2', [db1]);
    commands.length = 0;
    expect(await ledger.seriesOfSource('/backups')).toEqual([
      {
        series: '/backups/db',
        source: '/backups',
        latestBackupId: db2.id,
        latestBackupCreatedAt: '2025-01-02T00:00:00.000Z',
      },
    ]);
    expect(commands).toEqual(['QueryCommand']);
    expect((await ledger.seriesOfSource('/other')).map((s) => s.series)).toEqual(['/other/db']);
    expect(await ledger.seriesOfSource('/nowhere')).toEqual([]);
    await ledger.close();
  });

  it('indexes a series recorded before series carried their source, even when no newer backup comes', async () => {
    const { ledger, client, tableName } = await newLedger();
    const { UpdateItemCommand } = await import('@aws-sdk/client-dynamodb');
    const b = backup('db-20250101.tar', '/backups/db', '2025-01-01T00:00:00Z', 10);
    // What an older version wrote: the series item with its newest backup, no source index.
    await client.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: { pk: { S: 'SERIES#/backups/db' }, sk: { S: '#STATUS' } },
        UpdateExpression:
          'SET #type = :t, series = :s, gsi2pk = :g, gsi2sk = :s, latestBackupId = :id, latestBackupCreatedAt = :at',
        ExpressionAttributeNames: { '#type': 'type' },
        ExpressionAttributeValues: {
          ':t': { S: 'series' },
          ':s': { S: '/backups/db' },
          ':g': { S: 'SERIES' },
          ':id': { S: b.id },
          ':at': { S: '2025-01-01T00:00:00.000Z' },
        },
      }),
    );
    await ledger.recordCatalogue('r1', [b]);
    expect((await ledger.seriesOfSource('/backups')).map((s) => s.latestBackupId)).toEqual([b.id]);
    await ledger.close();
  });
});

describe('issue 15: coverage order', () => {
  it('of one series: one Query, never-verified first, then oldest verification first, with the fingerprint read', async () => {
    const { ledger, commands } = await newLedger();
    const a1 = backup('db-20250101.tar.gz', 'db', '2025-01-01T00:00:00Z', 1000);
    const a2 = backup('db-20250102.tar.gz', 'db', '2025-01-02T00:00:00Z', 1100);
    const a3 = backup('db-20250103.tar.gz', 'db', '2025-01-03T00:00:00Z', 900);
    const w1 = backup('web-20250101.tar.gz', 'web', '2025-01-01T00:00:00Z', 5000);
    await ledger.recordCatalogue('run-1', [a1, a2, a3, w1]);
    await ledger.recordResults([
      result('run-1', a2, 'integrity', 'PASS', '2025-01-03T00:01:00.000Z'),
      result('run-1', a1, 'integrity', 'WARN', '2025-01-03T00:02:00.000Z'),
      result('run-1', w1, 'integrity', 'PASS', '2025-01-03T00:03:00.000Z'),
      result('run-1', a3, 'integrity', 'FAIL', '2025-01-03T00:04:00.000Z'),
    ]);
    commands.length = 0;
    const order = await ledger.verificationsOf('db');
    expect(commands).toEqual(['QueryCommand']);
    expect(order).toEqual([
      { backupId: a3.id },
      { backupId: a2.id, lastVerifiedAt: '2025-01-03T00:01:00.000Z' },
      { backupId: a1.id, lastVerifiedAt: '2025-01-03T00:02:00.000Z' },
    ]);
    expect((await ledger.verificationsOf('web')).map((e) => e.backupId)).toEqual([w1.id]);
    await ledger.recordResults([
      {
        ...result('run-2', a3, 'integrity', 'PASS', '2025-01-05T00:00:00.000Z'),
        fingerprint: 'f'.repeat(32),
      },
    ]);
    expect((await ledger.verificationsOf('db')).at(-1)).toEqual({
      backupId: a3.id,
      lastVerifiedAt: '2025-01-05T00:00:00.000Z',
      lastVerifiedFingerprint: 'f'.repeat(32),
    });
    await ledger.close();
  });
});
