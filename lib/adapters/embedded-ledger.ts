import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { LedgerError, UsageError } from '../core/errors.ts';
import type { Ledger } from '../core/ledger.ts';
import { DynamoDbLedger } from './dynamodb-ledger.ts';
import { LEDGER_TABLE } from './ledger-schema.ts';

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

class EmbeddedLedger extends DynamoDbLedger {
  constructor(
    endpoint: string,
    folder: string,
    retentionDays: number,
    private readonly stop: () => Promise<void>,
  ) {
    super({
      tableName: EMBEDDED_TABLE,
      clientConfig: {
        endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'embedded', secretAccessKey: 'embedded' },
      },
      retentionDays,
      location: folder,
    });
  }

  override async close(): Promise<void> {
    await super.close();
    await this.stop();
  }
}

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
  let server: Server | undefined;
  try {
    server = await startDynalite(folder);
    const { port } = server.address() as AddressInfo;
    const running = server;
    const ledger = new EmbeddedLedger(`http://127.0.0.1:${port}`, folder, retentionDays, async () => {
      await stopServer(running);
      await releaseFolderLock(lockPath);
    });
    try {
      await ledger.ensureTable();
    } catch (error) {
      await ledger.close();
      throw error;
    }
    await sweepExpiredDaily(folder, `http://127.0.0.1:${port}`, new Date());
    return ledger;
  } catch (error) {
    if (server?.listening) await stopServer(server).catch(() => undefined);
    await releaseFolderLock(lockPath);
    if (error instanceof LedgerError) throw error;
    throw new LedgerError(`cannot open the ledger folder ${folder}: ${messageOf(error)}`, folder, {
      cause: error,
    });
  }
}

const SWEEP_MARKER = 'expiry-swept-at';
const SWEEP_EVERY_MS = 24 * 60 * 60 * 1000;

/**
 * dynalite has no TTL deletion, so the embedded ledger deletes expired runs and results itself,
 * as DynamoDB's TTL would, at most once a day (a Scan of the whole folder's table).
 */
async function sweepExpiredDaily(folder: string, endpoint: string, now: Date): Promise<void> {
  const marker = join(folder, SWEEP_MARKER);
  const last = Date.parse((await readFile(marker, 'utf8').catch(() => '')).trim());
  if (!Number.isNaN(last) && now.getTime() - last < SWEEP_EVERY_MS && last <= now.getTime()) return;
  try {
    await deleteExpiredItems(endpoint, now);
    await writeFile(marker, `${now.toISOString()}\n`);
  } catch {
    // Expired items left in place are what DynamoDB's TTL may also leave for days; the next open retries.
  }
}

/** Deletes every item whose `expiresAt` has passed; returns how many. */
export async function deleteExpiredItems(endpoint: string, now: Date): Promise<number> {
  const doc = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'embedded', secretAccessKey: 'embedded' },
    }),
  );
  const { partitionKey, sortKey, ttlAttribute } = LEDGER_TABLE;
  let deleted = 0;
  try {
    let start: Record<string, unknown> | undefined;
    do {
      const page = await doc.send(
        new ScanCommand({
          TableName: EMBEDDED_TABLE,
          ProjectionExpression: '#pk, #sk',
          FilterExpression: '#ttl < :now',
          ExpressionAttributeNames: { '#pk': partitionKey, '#sk': sortKey, '#ttl': ttlAttribute },
          ExpressionAttributeValues: { ':now': Math.floor(now.getTime() / 1000) },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      const keys = page.Items ?? [];
      for (let at = 0; at < keys.length; at += 25) {
        let requests = keys.slice(at, at + 25).map((Key) => ({ DeleteRequest: { Key } }));
        for (let attempt = 0; requests.length > 0; attempt++) {
          if (attempt > 5) throw new Error('the embedded ledger kept items unprocessed');
          const out = await doc.send(new BatchWriteCommand({ RequestItems: { [EMBEDDED_TABLE]: requests } }));
          const left = out.UnprocessedItems?.[EMBEDDED_TABLE] ?? [];
          deleted += requests.length - left.length;
          requests = left as typeof requests;
        }
      }
      start = page.LastEvaluatedKey;
    } while (start);
  } finally {
    doc.destroy();
  }
  return deleted;
}

/**
 * LevelDB allows one process per folder and dynalite crashes the whole process when its open fails,
 * so a lock file holding the owner's pid is taken first (a lock left by a dead process is taken over),
 * then LevelDB itself is asked whether anyone else holds the folder.
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
  // A foreign LevelDB user (not one of ours) would still make dynalite crash the process.
  let locked: boolean;
  try {
    locked = await levelDbIsLocked(folder);
  } catch (error) {
    await releaseFolderLock(lockPath);
    throw error;
  }
  if (locked) {
    await releaseFolderLock(lockPath);
    throw inUse(undefined);
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
