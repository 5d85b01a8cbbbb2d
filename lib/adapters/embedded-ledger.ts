import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import type { ScanCommandOutput } from '@aws-sdk/lib-dynamodb';
import type BetterSqlite3 from 'better-sqlite3';
import Database from 'better-sqlite3';
import { LedgerError, UsageError } from '../core/errors.ts';
import type { Ledger } from '../core/ledger.ts';
import { DynamoDbLedger } from './dynamodb-ledger.ts';
import { SqliteDocuments } from './sqlite-documents.ts';

/** The table inside an embedded ledger folder. */
export const EMBEDDED_TABLE = 'backup-validator-ledger';
const LOCK_FILE = 'backup-validator.lock';

export interface OpenLedgerOptions {
  retentionDays: number;
  /** Extra client settings for `dynamodb://TABLE` (region, credentials, endpoint). */
  dynamodb?: DynamoDBClientConfig;
  env?: NodeJS.ProcessEnv;
}

export type OpenedLedger = Ledger & { close(): Promise<void> };

/**
 * `dynamodb://TABLE`: the table at AWS (or at AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL).
 * Anything else is a folder: a DynamoDB-compatible server (dynalite on LevelDB) runs inside this
 * process on a loopback port for as long as the ledger is open.
 */
export async function openLedger(spec: string, options: OpenLedgerOptions): Promise<OpenedLedger> {
  if (spec.startsWith('dynamodb://')) {
    const tableName = spec.slice('dynamodb://'.length);
    if (!/^[A-Za-z0-9_.-]{3,255}$/.test(tableName)) {
      throw new UsageError(
        `--ledger ${spec}: "${tableName}" is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)`,
        'ledger',
      );
    }
    const env = options.env ?? process.env;
    const endpoint = options.dynamodb?.endpoint ?? env.AWS_ENDPOINT_URL_DYNAMODB ?? env.AWS_ENDPOINT_URL;
    const region = options.dynamodb?.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
    // The environment given wins, as the SDK's chain would do with process.env (first in its order).
    const credentials =
      env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
        ? {
            accessKeyId: env.AWS_ACCESS_KEY_ID,
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          }
        : undefined;
    return new DynamoDbLedger({
      tableName,
      clientConfig: {
        ...(region ? { region } : {}),
        ...(credentials ? { credentials } : {}),
        ...options.dynamodb,
        ...(endpoint ? { endpoint } : {}),
      },
      retentionDays: options.retentionDays,
    });
  }
  return openFolderLedger(resolve(spec), options.retentionDays);
}

/** The ledger's SQLite file inside the folder. */
export const DATABASE_FILE = 'ledger.sqlite';

class EmbeddedLedger extends DynamoDbLedger {
  constructor(
    folder: string,
    retentionDays: number,
    private readonly documents: SqliteDocuments,
    private readonly release: () => Promise<void>,
  ) {
    super({
      tableName: EMBEDDED_TABLE,
      // Never used to send: the documents answer every command in this process.
      clientConfig: {
        region: 'us-east-1',
        credentials: { accessKeyId: 'embedded', secretAccessKey: 'embedded' },
      },
      retentionDays,
      location: folder,
      documents,
    });
  }

  override async close(): Promise<void> {
    await super.close();
    this.documents.close();
    await this.release();
  }
}

/**
 * The folder holds the same table DynamoDB would (items, keys, indexes, conditional writes
 * with DynamoDB's rules) in one SQLite file, read and written inside this process: opening
 * costs milliseconds, where a DynamoDB-compatible server on LevelDB cost a second of start-up
 * and a round trip per write. A folder from before (LevelDB, written by dynalite) is copied
 * into SQLite once, on first open, and left in place.
 */
async function openFolderLedger(folder: string, retentionDays: number): Promise<OpenedLedger> {
  try {
    await mkdir(folder, { recursive: true });
  } catch (error) {
    throw new LedgerError(
      `cannot create the ledger folder ${folder} (${codeOf(error)}): ` +
        'choose a folder you can write with --ledger DIR, or use --ledger dynamodb://TABLE',
      folder,
      { cause: error },
    );
  }
  const lockPath = join(folder, LOCK_FILE);
  await acquireFolderLock(folder, lockPath);
  try {
    const database = join(folder, DATABASE_FILE);
    if (!existsSync(database) && existsSync(join(folder, 'CURRENT'))) await migrateLevelDb(folder, database);
    const documents = openDatabase(folder, database);
    await sweepExpiredDaily(folder, documents, new Date());
    return new EmbeddedLedger(folder, retentionDays, documents, () => releaseFolderLock(lockPath));
  } catch (error) {
    await releaseFolderLock(lockPath);
    if (error instanceof LedgerError) throw error;
    throw new LedgerError(`cannot open the ledger folder ${folder}: ${messageOf(error)}`, folder, {
      cause: error,
    });
  }
}

function openDatabase(folder: string, file: string): SqliteDocuments {
  let db: BetterSqlite3.Database | undefined;
  try {
    db = new Database(file);
    return new SqliteDocuments(db);
  } catch (error) {
    db?.close();
    throw new LedgerError(
      `cannot open the ledger database in ${folder} (${codeOf(error) ?? 'error'}: ${messageOf(error)}): ` +
        'if the folder is damaged, move it aside and run again to start a new ledger',
      folder,
      { cause: error },
    );
  }
}

const SWEEP_MARKER = 'expiry-swept-at';
const SWEEP_EVERY_MS = 24 * 60 * 60 * 1000;

/** The embedded table has no TTL process: expired runs and results are deleted here, at most once a day. */
async function sweepExpiredDaily(folder: string, documents: SqliteDocuments, now: Date): Promise<void> {
  const marker = join(folder, SWEEP_MARKER);
  const last = Date.parse((await readFile(marker, 'utf8').catch(() => '')).trim());
  if (!Number.isNaN(last) && now.getTime() - last < SWEEP_EVERY_MS && last <= now.getTime()) return;
  try {
    documents.deleteExpired(Math.floor(now.getTime() / 1000));
    await writeFile(marker, `${now.toISOString()}\n`);
  } catch {
    // Expired items left in place are what DynamoDB's TTL may also leave for days; the next open retries.
  }
}

/**
 * Copies a ledger folder written by dynalite (LevelDB) into the SQLite file: through dynalite
 * itself, once; the copy is made beside and renamed, so an interrupted copy is made again.
 */
async function migrateLevelDb(folder: string, database: string): Promise<void> {
  if (await levelDbIsLocked(folder))
    throw new LedgerError(
      `ledger folder ${folder} is in use by another process (its LevelDB is locked): wait for it to finish, or give this run another --ledger folder`,
      folder,
    );
  const partial = `${database}.partial`;
  await rm(partial, { force: true });
  const server = await startDynalite(folder);
  const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
  const { DynamoDBDocumentClient, ScanCommand } = await import('@aws-sdk/lib-dynamodb');
  const doc = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'embedded', secretAccessKey: 'embedded' },
    }),
  );
  const documents = openDatabase(folder, partial);
  try {
    let start: Record<string, unknown> | undefined;
    do {
      let page: ScanCommandOutput;
      try {
        page = await doc.send(
          new ScanCommand({ TableName: EMBEDDED_TABLE, ...(start ? { ExclusiveStartKey: start } : {}) }),
        );
      } catch (error) {
        // A LevelDB folder without the ledger table holds nothing to copy.
        if ((error as Error).name === 'ResourceNotFoundException') break;
        throw error;
      }
      documents.putAll(page.Items ?? []);
      start = page.LastEvaluatedKey;
    } while (start);
  } finally {
    documents.close();
    doc.destroy();
    await stopServer(server);
  }
  await rename(partial, database);
  await rm(`${partial}-wal`, { force: true });
  await rm(`${partial}-shm`, { force: true });
}

/**
 * One process per folder: SQLite would let two interleave, but two runs recording into one ledger
 * at once are a mistake worth saying; a lock file holds the owner's pid (a lock left by a dead
 * process is taken over).
 */
async function acquireFolderLock(folder: string, lockPath: string): Promise<void> {
  const inUse = (pid: number | undefined) =>
    new LedgerError(
      `ledger folder ${folder} is in use by another backup-validator process` +
        `${pid !== undefined ? ` (pid ${pid})` : ''}: wait for it to finish, or give this run another --ledger folder` +
        `${pid !== undefined ? ` (if no process ${pid} is running, delete ${lockPath})` : ''}`,
      folder,
    );
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(lockPath, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (error) {
      if (codeOf(error) !== 'EEXIST') {
        throw new LedgerError(
          `cannot write in the ledger folder ${folder} (${codeOf(error)}): check its permissions or choose another --ledger folder`,
          folder,
          { cause: error },
        );
      }
    }
    const owner = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
    const pid = Number.isInteger(owner) && owner > 0 ? owner : undefined;
    if (attempt > 0 || (pid !== undefined && (pid === process.pid || isAlive(pid)))) throw inUse(pid);
    // Left by a process that is gone: take it over (once; a rival taking it at the same time wins).
    await unlink(lockPath).catch(() => undefined);
  }
}

async function releaseFolderLock(lockPath: string): Promise<void> {
  const owner = await readFile(lockPath, 'utf8').catch(() => '');
  if (Number.parseInt(owner, 10) === process.pid) await unlink(lockPath).catch(() => undefined);
}

interface LevelDb {
  open(): Promise<void>;
  close(): Promise<void>;
}

const requireHere = createRequire(import.meta.url);
/** dynalite's own copy of `level`, so the probe opens the folder exactly as dynalite will. */
const requireFromDynalite = createRequire(requireHere.resolve('dynalite'));

async function levelDbIsLocked(folder: string): Promise<boolean> {
  const { Level } = requireFromDynalite('level') as { Level: new (path: string) => LevelDb };
  const db = new Level(folder);
  try {
    await db.open();
  } catch (error) {
    const codes = [codeOf(error), codeOf((error as { cause?: unknown }).cause)];
    if (codes.includes('LEVEL_LOCKED')) return true;
    throw new LedgerError(
      `cannot open the ledger database in ${folder} (${codes.filter(Boolean).join('/')}: ${messageOf(error)}): ` +
        'if the folder is damaged, move it aside and run again to start a new ledger',
      folder,
      { cause: error },
    );
  }
  await db.close();
  return false;
}

async function startDynalite(folder: string): Promise<Server> {
  const dynalite = requireHere('dynalite') as (options: Record<string, unknown>) => Server;
  const server = dynalite({ path: folder, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  return server;
}

function stopServer(server: Server): Promise<void> {
  return new Promise((resolveClose, reject) => {
    server.close((error) => (error ? reject(error) : resolveClose()));
    server.closeAllConnections?.();
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return codeOf(error) === 'EPERM';
  }
}

function codeOf(error: unknown): string | undefined {
  return error && typeof error === 'object' && 'code' in error ? String(error.code) : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
