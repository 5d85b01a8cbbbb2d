import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import { openLedger } from '../../lib/adapters/embedded-ledger.ts';
import { LedgerError, UsageError } from '../../lib/core/errors.ts';
import { backup, credentials, result } from './ledger-support.ts';

const scratch = await mkdtemp(join(tmpdir(), 'bv-ledger-'));
afterAll(() => rm(scratch, { recursive: true, force: true }));
const embeddedModule = resolve(fileURLToPath(import.meta.url), '../../../lib/adapters/embedded-ledger.ts');

/** Runs a short script in a separate Node process (through tsx) and returns what it printed. */
async function inAnotherProcess(source: string): Promise<{ code: number | null; out: string }> {
  const script = join(scratch, `child-${randomUUID()}.mts`);
  await writeFile(script, source);
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr.on('data', () => undefined);
  const code = await new Promise<number | null>((done) => child.once('close', done));
  return { code, out };
}

describe('embedded ledger folder', () => {
  it('keeps what was recorded across close and reopen', async () => {
    const folder = join(scratch, 'persist');
    const first = await openLedger(folder, { retentionDays: 10 });
    const b = backup('db-20250101.tar', 'db', '2025-01-01T00:00:00Z', 42);
    await first.startRun({ runId: 'r1', trigger: 'cli', sources: ['/b'] });
    await first.recordCatalogue('r1', [b]);
    await first.recordResults([result('r1', b, 'integrity', 'PASS', '2025-01-02T00:00:00.000Z')]);
    await first.close();

    const again = await openLedger(folder, { retentionDays: 10 });
    expect(again.location).toBe(folder);
    const detail = await again.getRun('r1');
    expect(detail?.results.map((r) => r.status)).toEqual(['PASS']);
    expect((await again.catalogueEntry(b.id))?.bytes).toBe(42);
    expect((await again.latestBySeries())[0]?.status).toBe('PASS');
    await again.close();
  });

  it('deletes expired runs and results on open, at most once a day, as DynamoDB TTL would; keeps what never expires', async () => {
    const folder = join(scratch, 'expiry');
    const old = backup('db-20240101.tar', 'db', '2024-01-01T00:00:00Z', 42);
    const recent = backup('db-20261101.tar', 'db', '2026-11-01T00:00:00Z', 43);
    const first = await openLedger(folder, { retentionDays: 400 });
    await first.startRun({
      runId: 'r-old',
      trigger: 'cli',
      sources: ['/b'],
      startedAt: '2024-01-02T00:00:00.000Z',
    });
    await first.recordCatalogue('r-old', [old]);
    await first.recordResults([result('r-old', old, 'integrity', 'PASS', '2024-01-02T00:01:00.000Z')]);
    const now = new Date().toISOString();
    await first.startRun({ runId: 'r-new', trigger: 'cli', sources: ['/b'], startedAt: now });
    await first.recordCatalogue('r-new', [recent]);
    await first.recordResults([result('r-new', recent, 'integrity', 'PASS', now)]);
    await first.close();
    // The first open swept an empty ledger today: the next one within a day does not scan again.
    const sameDay = await openLedger(folder, { retentionDays: 400 });
    expect(await sameDay.getRun('r-old')).toBeDefined();
    await sameDay.close();

    await writeFile(join(folder, 'expiry-swept-at'), '2026-01-01T00:00:00.000Z\n');
    const later = await openLedger(folder, { retentionDays: 400 });
    expect(await later.getRun('r-old')).toBeUndefined();
    expect((await later.getRun('r-new'))?.results.map((r) => r.status)).toEqual(['PASS']);
    expect((await later.recentRuns(10)).map((r) => r.runId)).toEqual(['r-new']);
    // The catalogue and first-seen data never expire.
    expect((await later.catalogueEntry(old.id))?.bytes).toBe(42);
    expect((await later.latestBySeries()).map((s) => s.series)).toEqual(['db']);
    await later.close();
    expect(Date.parse((await readFile(join(folder, 'expiry-swept-at'), 'utf8')).trim())).toBeGreaterThan(
      Date.parse('2026-01-01T00:00:00.000Z'),
    );
  });

  it('a second process opening the same folder gets a clear LedgerError, and the first keeps working', async () => {
    const folder = join(scratch, 'shared');
    const holder = await openLedger(folder, { retentionDays: 10 });
    await holder.startRun({ runId: 'held', trigger: 'cli', sources: [] });
    const { code, out } = await inAnotherProcess(`
      import { openLedger } from ${JSON.stringify(embeddedModule)};
      try {
        const ledger = await openLedger(${JSON.stringify(folder)}, { retentionDays: 10 });
        await ledger.close();
        console.log(JSON.stringify({ opened: true }));
      } catch (error) {
        console.log(JSON.stringify({ name: error.name, message: error.message }));
      }
    `);
    expect(code).toBe(0);
    const reply = JSON.parse(out.trim().split('\n').pop() as string);
    expect(reply.name).toBe('LedgerError');
    expect(reply.message).toContain(`ledger folder ${folder} is in use by another backup-validator process`);
    expect(reply.message).toContain(`pid ${process.pid}`);
    expect((await holder.recentRuns(5)).map((r) => r.runId)).toEqual(['held']);
    await holder.close();
  });

  it('the same process opening an open folder twice gets the same LedgerError', async () => {
    const folder = join(scratch, 'twice');
    const holder = await openLedger(folder, { retentionDays: 10 });
    const error = await openLedger(folder, { retentionDays: 10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LedgerError);
    expect((error as Error).message).toContain('is in use by another backup-validator process');
    await holder.close();
    const reopened = await openLedger(folder, { retentionDays: 10 });
    await reopened.close();
  });

  it('a lock left by a process that is gone is taken over', async () => {
    const folder = join(scratch, 'stale');
    const first = await openLedger(folder, { retentionDays: 10 });
    await first.close();
    const { out } = await inAnotherProcess('console.log(process.pid);');
    const deadPid = Number.parseInt(out.trim(), 10);
    await writeFile(join(folder, 'backup-validator.lock'), `${deadPid}\n`);
    const ledger = await openLedger(folder, { retentionDays: 10 });
    expect(await readFile(join(folder, 'backup-validator.lock'), 'utf8')).toBe(`${process.pid}\n`);
    await ledger.close();
  });

  it('a folder that cannot be created (under a regular file) is a clear LedgerError', async () => {
    const file = join(scratch, 'plain-file');
    await writeFile(file, 'not a folder');
    const error = await openLedger(join(file, 'ledger'), { retentionDays: 10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LedgerError);
    expect((error as Error).message).toMatch(
      /cannot create the ledger folder .*plain-file\/ledger \(ENOTDIR\)/,
    );
  });

  it('issue 13: a damaged ledger database is a clear LedgerError, not a crash', async () => {
    const folder = join(scratch, 'garbage');
    const first = await openLedger(folder, { retentionDays: 10 });
    await first.close();
    await writeFile(join(folder, 'ledger.sqlite'), 'not a database '.repeat(100));
    const error = await openLedger(folder, { retentionDays: 10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LedgerError);
    expect((error as Error).message).toMatch(/cannot open the ledger database in .*move it aside/);
    // The failed open left no lock behind.
    await expect(readFile(join(folder, 'backup-validator.lock'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('an old ledger folder (LevelDB) that is damaged is a clear LedgerError, not a crash', async () => {
    const folder = join(scratch, 'garbage-leveldb');
    await mkdir(folder);
    await writeFile(join(folder, 'CURRENT'), 'MANIFEST-999999\n');
    const error = await openLedger(folder, { retentionDays: 10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LedgerError);
    expect((error as Error).message).toMatch(/cannot open the ledger database in/);
    await expect(readFile(join(folder, 'backup-validator.lock'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('dynamodb://TABLE', () => {
  it('uses the endpoint from AWS_ENDPOINT_URL_DYNAMODB and the same ledger code', async () => {
    const tableName = `real-${randomUUID()}`;
    const endpoint = inject('dynamoEndpoint');
    const setup = new DynamoDbLedger({
      tableName,
      clientConfig: { endpoint, region: 'us-east-1', credentials },
    });
    await setup.ensureTable();
    await setup.close();
    const ledger = await openLedger(`dynamodb://${tableName}`, {
      retentionDays: 5,
      dynamodb: { region: 'us-east-1', credentials },
      env: { AWS_ENDPOINT_URL_DYNAMODB: endpoint },
    });
    expect(ledger.location).toBe(`dynamodb://${tableName}`);
    await ledger.startRun({ runId: 'remote', trigger: 'schedule', sources: ['s3://b'] });
    expect((await ledger.recentRuns(1))[0]?.runId).toBe('remote');
    await ledger.close();
  });

  it('falls back to AWS_ENDPOINT_URL, and a missing table is a LedgerError naming it', async () => {
    const ledger = await openLedger('dynamodb://no-such-ledger', {
      retentionDays: 5,
      dynamodb: { region: 'us-east-1', credentials },
      env: { AWS_ENDPOINT_URL: inject('dynamoEndpoint') },
    });
    const error = await ledger.recentRuns(1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LedgerError);
    expect((error as Error).message).toContain('table "no-such-ledger" does not exist');
    await ledger.close();
  });

  it('a bad table name is a usage error', async () => {
    await expect(openLedger('dynamodb://x', { retentionDays: 5 })).rejects.toBeInstanceOf(UsageError);
    await expect(openLedger('dynamodb://', { retentionDays: 5 })).rejects.toBeInstanceOf(UsageError);
  });
});
