import { createHash } from 'node:crypto';
import type { DynamoDBClient, DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import type { QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import type { RpoCheck } from '../core/compliance.ts';
import { LedgerError } from '../core/errors.ts';
import { type Finding, type FindingCode, finding, type Status } from '../core/findings.ts';
import {
  applyResultsToBaseline,
  backupLocation,
  type CatalogueEntry,
  type CopyRecord,
  emptyBaseline,
  expiresAtFor,
  type KnownSeries,
  type Ledger,
  type NewRun,
  type RunDetail,
  type RunOutcome,
  type RunRecord,
  representativeResult,
  type SeriesBaseline,
  type SeriesRpo,
  type SeriesStatus,
  STAGES,
  type Stage,
  type StageResultRecord,
  type StageSummary,
  seriesStatusOf,
  statusRank,
  type VerificationEntry,
} from '../core/ledger.ts';
import type { Backup } from '../core/model.ts';
import type { FirstSeenChecksum } from '../core/ports.ts';
import {
  BatchGetCommand,
  BatchWriteCommand,
  type DocumentCommand,
  type DocumentCommandKind,
  type DocumentCommands,
  type DocumentSender,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from './document-commands.ts';
import { createTableInput, LEDGER_TABLE } from './ledger-schema.ts';

export interface DynamoDbLedgerOptions {
  tableName: string;
  /** A client of the caller's (left open by close()); otherwise one is made from clientConfig. */
  client?: DynamoDBClient;
  clientConfig?: DynamoDBClientConfig;
  /** Days runs and results are kept (TTL); 0 keeps them forever. */
  retentionDays?: number;
  now?: () => Date;
  /** What error messages name as the ledger; `dynamodb://TABLE` by default. */
  location?: string;
  /** Where the document commands go instead of a DocumentClient (the embedded ledger's SQLite table). */
  documents?: DocumentSender;
}

type Item = Record<string, unknown>;

/** Sort-key and partition-key prefixes; docs/ledger.md is the map. */
const K = {
  run: (runId: string) => `RUN#${keyPart(runId)}`,
  runSk: '#RUN',
  resultSk: (backupId: string, stage: Stage) => `RESULT#${keyPart(backupId)}#${stage}`,
  backup: (backupId: string) => `BACKUP#${keyPart(backupId)}`,
  backupSk: '#BACKUP',
  checksumSk: (path: string) => `SUM#${keyPart(path)}`,
  copySk: (location: string) => `COPY#${keyPart(location)}`,
  series: (series: string) => `SERIES#${keyPart(series)}`,
  source: (source: string) => `SOURCE#${keyPart(sourceKey(source))}`,
  seriesSk: '#STATUS',
  baselineSk: 'BASELINE',
  runsIndexPk: 'RUNS',
  seriesIndexPk: 'SERIES',
  verifiedIndexPk: 'VERIFIED',
  /** gsi1 partition of a series' backups, sorted by last verification (the gsi2 sort key's format). */
  coverage: (series: string) => `COVERAGE#${keyPart(series)}`,
  /** Sorts before every ISO-8601 time, so never-verified backups fall in every "not verified since" range. */
  neverVerified: '!never',
};

/** A source as the ledger keys it: `s3://b/p/` and `s3://b/p` are one source. */
function sourceKey(source: string): string {
  return source.replace(/\/+$/, '') || source;
}

/**
 * Keys have byte limits (partition 2048, sort 1024, the same for index keys); very long ids and paths
 * are replaced by their hash. A key made of several parts gives each a share of the limit.
 */
function keyPart(value: string, maxBytes = 700): string {
  if (Buffer.byteLength(value) <= maxBytes) return value;
  return `sha256:${createHash('sha256').update(value).digest('hex')}`;
}

/** An index sort key within DynamoDB's limit: `head` kept (it orders the index), `tail` hashed if needed. */
function boundedSortKey(head: string, tail: string): string {
  if (Buffer.byteLength(head) + Buffer.byteLength(tail) <= INDEX_SORT_KEY_BYTES) return `${head}${tail}`;
  return `${head}sha256:${createHash('sha256').update(tail).digest('hex')}`;
}

/**
 * Findings beyond this many UTF-8 bytes of JSON are left out of a result item: DynamoDB caps items at
 * 400 KB counted in UTF-8 (dynalite counts UTF-16 characters, so only DynamoDB Local shows the
 * difference for multi-byte names).
 */
const FINDINGS_BUDGET = 200_000;
/** Room kept for the finding that counts those left out (its text is cut to a quarter: 4 bytes a character at most). */
const OMITTED_NOTE_BUDGET = 4096;
/** DynamoDB's limit on an index sort key, in UTF-8 bytes. */
const INDEX_SORT_KEY_BYTES = 1024;
const BATCH_WRITE_SIZE = 25;
const BATCH_GET_SIZE = 100;
const PARALLEL_WRITES = 8;
const BATCH_RETRIES = 8;

const CATALOGUE_FIELDS = [
  'series',
  'kind',
  'source',
  'key',
  'name',
  'location',
  'createdAt',
  'objects',
  'bytes',
] as const;

export class DynamoDbLedger implements Ledger {
  readonly location: string;
  readonly tableName: string;
  private client: DynamoDBClient | undefined;
  private readonly clientConfig: DynamoDBClientConfig;
  private readonly doc: DocumentSender;
  private readonly ownsClient: boolean;
  private readonly retentionDays: number;
  private readonly now: () => Date;
  private readonly endpointLabel: string;

  constructor(options: DynamoDbLedgerOptions) {
    this.tableName = options.tableName;
    this.location = options.location ?? `dynamodb://${options.tableName}`;
    this.ownsClient = options.client === undefined;
    this.client = options.client;
    this.clientConfig = options.clientConfig ?? {};
    this.doc = options.documents ?? new SdkDocuments(() => this.tableClient());
    this.retentionDays = options.retentionDays ?? 400;
    this.now = options.now ?? (() => new Date());
    const endpoint = options.clientConfig?.endpoint;
    this.endpointLabel = typeof endpoint === 'string' ? endpoint : 'the configured DynamoDB endpoint';
  }

  /** Creates the table if missing and enables TTL where the server supports it (local and embedded use). */
  async ensureTable(): Promise<void> {
    await this.guard('create the ledger table', async () => {
      let exists = true;
      try {
        await this.checkTableShape();
      } catch (error) {
        if (errorName(error) !== 'ResourceNotFoundException') throw error;
        exists = false;
      }
      if (!exists) {
        try {
          const { CreateTableCommand } = await import('@aws-sdk/client-dynamodb');
          await (await this.tableClient()).send(new CreateTableCommand(createTableInput(this.tableName)));
        } catch (error) {
          if (errorName(error) !== 'ResourceInUseException') throw error;
        }
        await this.waitUntilActive();
      }
      await this.enableTtl();
    });
  }

  private async checkTableShape(): Promise<void> {
    const { DescribeTableCommand } = await import('@aws-sdk/client-dynamodb');
    const client = await this.tableClient();
    const { Table } = await client.send(new DescribeTableCommand({ TableName: this.tableName }));
    const keys = (Table?.KeySchema ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).join(',');
    const indexes = new Set((Table?.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName));
    const want = `${LEDGER_TABLE.partitionKey}:HASH,${LEDGER_TABLE.sortKey}:RANGE`;
    const missing = Object.values(LEDGER_TABLE.indexes)
      .map((i) => i.name)
      .filter((name) => !indexes.has(name));
    if (keys !== want || missing.length > 0) {
      throw new LedgerError(
        `table "${this.tableName}" is not a backup-validator ledger (keys ${keys || 'none'}, ` +
          `missing indexes: ${missing.join(', ') || 'none'}); expected ${want} with indexes gsi1 and gsi2. ` +
          'Use another table name or the table the stack creates.',
        this.location,
      );
    }
  }

  private async waitUntilActive(): Promise<void> {
    const { DescribeTableCommand } = await import('@aws-sdk/client-dynamodb');
    const client = await this.tableClient();
    for (let attempt = 0; attempt < 120; attempt++) {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: this.tableName }));
      const indexesActive = (Table?.GlobalSecondaryIndexes ?? []).every((i) => i.IndexStatus === 'ACTIVE');
      if (Table?.TableStatus === 'ACTIVE' && indexesActive) return;
      await sleep(250);
    }
    throw new LedgerError(
      `table "${this.tableName}" did not become ACTIVE within 30 s at ${this.endpointLabel}`,
      this.location,
    );
  }

  private async enableTtl(): Promise<void> {
    try {
      const { DescribeTimeToLiveCommand, UpdateTimeToLiveCommand } = await import('@aws-sdk/client-dynamodb');
      const client = await this.tableClient();
      const ttl = await client.send(new DescribeTimeToLiveCommand({ TableName: this.tableName }));
      const state = ttl.TimeToLiveDescription?.TimeToLiveStatus;
      if (state === 'ENABLED' || state === 'ENABLING') return;
      await client.send(
        new UpdateTimeToLiveCommand({
          TableName: this.tableName,
          TimeToLiveSpecification: { AttributeName: LEDGER_TABLE.ttlAttribute, Enabled: true },
        }),
      );
    } catch (error) {
      // dynalite has no UpdateTimeToLive: the attribute is still written, and a real table expires it.
      if (errorName(error) === 'UnknownOperationException') return;
      throw error;
    }
  }

  // ---------------------------------------------------------------- runs

  async startRun(run: NewRun): Promise<RunRecord> {
    return this.guard(`start run ${run.runId}`, async () => {
      const startedAt = run.startedAt ?? this.now().toISOString();
      const record: RunRecord = {
        runId: run.runId,
        trigger: run.trigger,
        sources: [...run.sources],
        ...(run.command !== undefined ? { command: run.command } : {}),
        startedAt,
        status: 'RUNNING',
      };
      const item: Item = {
        pk: K.run(run.runId),
        sk: K.runSk,
        type: 'run',
        ...record,
        gsi1pk: K.runsIndexPk,
        gsi1sk: `${startedAt}#${keyPart(run.runId)}`,
        expiresAt: expiresAtFor(startedAt, this.retentionDays),
      };
      try {
        await this.doc.send(
          PutCommand({
            TableName: this.tableName,
            Item: item,
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
        return record;
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        const existing = await this.getItem(K.run(run.runId), K.runSk);
        if (existing === undefined) throw error;
        return toRun(existing);
      }
    });
  }

  async finishRun(runId: string, outcome: RunOutcome): Promise<RunRecord> {
    return this.guard(`finish run ${runId}`, async () => {
      const finishedAt = outcome.finishedAt ?? this.now().toISOString();
      try {
        const out = await this.doc.send(
          UpdateCommand({
            TableName: this.tableName,
            Key: { pk: K.run(runId), sk: K.runSk },
            UpdateExpression:
              (outcome.error === undefined
                ? 'SET #status = :status, finishedAt = :finishedAt, counts = :counts'
                : 'SET #status = :status, finishedAt = :finishedAt, counts = :counts, #error = :error') +
              (outcome.summary !== undefined ? ', summary = :summary' : '') +
              (outcome.error === undefined ? ' REMOVE #error' : ''),
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeNames: { '#status': 'status', '#error': 'error' },
            ExpressionAttributeValues: {
              ':status': outcome.status,
              ':finishedAt': finishedAt,
              ':counts': outcome.counts,
              ...(outcome.error !== undefined ? { ':error': outcome.error } : {}),
              ...(outcome.summary !== undefined ? { ':summary': JSON.stringify(outcome.summary) } : {}),
            },
            ReturnValues: 'ALL_NEW',
          }),
        );
        return toRun(out.Attributes ?? {});
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        throw new LedgerError(
          `run ${runId} was never started in the ledger ${this.location}: call startRun before finishRun`,
          this.location,
          { cause: error },
        );
      }
    });
  }

  async recentRuns(limit: number): Promise<RunRecord[]> {
    return this.guard('list recent runs', async () => {
      const items = await this.query(
        {
          IndexName: LEDGER_TABLE.indexes.gsi1.name,
          KeyConditionExpression: 'gsi1pk = :pk',
          ExpressionAttributeValues: { ':pk': K.runsIndexPk },
          ScanIndexForward: false,
        },
        limit,
      );
      return items.map(toRun);
    });
  }

  async getRun(runId: string): Promise<RunDetail | undefined> {
    return this.guard(`read run ${runId}`, async () => {
      const items = await this.query({
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': K.run(runId) },
        ConsistentRead: true,
      });
      const runItem = items.find((i) => i.sk === K.runSk);
      if (runItem === undefined) return undefined;
      return { run: toRun(runItem), results: items.filter((i) => i.type === 'result').map(toResult) };
    });
  }

  // ---------------------------------------------------------------- catalogue

  async recordCatalogue(runId: string, backups: readonly Backup[]): Promise<void> {
    await this.guard(`record the catalogue of run ${runId}`, async () => {
      const unique = new Map(backups.map((b) => [b.id, b]));
      const known = await this.batchGet(
        [...unique.keys()].map((id) => ({ pk: K.backup(id), sk: K.backupSk })),
        ['pk', 'firstSeenAt', 'gsi1pk', 'gsi2sk', ...CATALOGUE_FIELDS],
      );
      const firstSeenAt = this.now().toISOString();
      const changed = [...unique.values()].filter((b) => {
        const existing = known.get(K.backup(b.id));
        const wanted = catalogueFields(b);
        return (
          existing?.firstSeenAt === undefined ||
          existing.gsi1pk === undefined ||
          CATALOGUE_FIELDS.some((field) => existing[field] !== wanted[field])
        );
      });
      // UpdateItem rather than a batch put: a put would wipe the backup's verification state,
      // which other runs may be writing at the same moment.
      await forEachLimit(changed, PARALLEL_WRITES, async (backup) => {
        const fields = catalogueFields(backup);
        const names: Record<string, string> = {};
        const values: Record<string, unknown> = {};
        const sets = Object.entries(fields).map(([field, value]) => {
          names[`#${field}`] = field;
          values[`:${field}`] = value;
          return `#${field} = :${field}`;
        });
        await this.doc.send(
          UpdateCommand({
            TableName: this.tableName,
            Key: { pk: K.backup(backup.id), sk: K.backupSk },
            UpdateExpression:
              `SET ${sets.join(', ')}, #type = :type, backupId = :backupId, ` +
              'firstSeenAt = if_not_exists(firstSeenAt, :firstSeenAt), ' +
              'firstSeenRunId = if_not_exists(firstSeenRunId, :runId), ' +
              'gsi2pk = :verified, gsi2sk = if_not_exists(gsi2sk, :never), ' +
              'gsi1pk = :coverage, gsi1sk = if_not_exists(gsi1sk, :verifiedKey)',
            ExpressionAttributeNames: { ...names, '#type': 'type' },
            ExpressionAttributeValues: {
              ...values,
              ':type': 'backup',
              ':backupId': backup.id,
              ':firstSeenAt': firstSeenAt,
              ':runId': runId,
              ':verified': K.verifiedIndexPk,
              ':never': `${K.neverVerified}#${keyPart(backup.id)}`,
              ':coverage': K.coverage(backup.series),
              ':verifiedKey': verifiedKeyOf(known.get(K.backup(backup.id)), backup.id),
            },
          }),
        );
      });
      const newestBySeries = new Map<string, Backup>();
      // Series of outer backups are indexed by source (seriesOfSource); archives found inside
      // a folder backup are facts of that backup, not series that can vanish on their own.
      const outer = new Set<string>();
      for (const b of unique.values()) {
        const current = newestBySeries.get(b.series);
        if (current === undefined || b.createdAt > current.createdAt) newestBySeries.set(b.series, b);
        if (b.parentId === undefined) outer.add(b.series);
      }
      await forEachLimit([...newestBySeries.values()], PARALLEL_WRITES, async (b) => {
        const bySource = outer.has(b.series)
          ? {
              set: ', #source = :source, gsi1pk = :gsi1pk, gsi1sk = :gsi1sk',
              values: { ':source': b.source, ':gsi1pk': K.source(b.source), ':gsi1sk': keyPart(b.series) },
            }
          : { set: '', values: {} };
        const names = { '#type': 'type', ...(bySource.set ? { '#source': 'source' } : {}) };
        const newer = await this.conditionHolds(
          this.doc.send(
            UpdateCommand({
              TableName: this.tableName,
              Key: { pk: K.series(b.series), sk: K.seriesSk },
              UpdateExpression:
                'SET #type = :type, series = :series, gsi2pk = :gsi2pk, gsi2sk = :seriesKey, ' +
                `latestBackupId = :id, latestBackupCreatedAt = :createdAt${bySource.set}`,
              ConditionExpression:
                'attribute_not_exists(latestBackupCreatedAt) OR latestBackupCreatedAt < :createdAt',
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: {
                ':type': 'series',
                ':series': b.series,
                ':seriesKey': keyPart(b.series),
                ':gsi2pk': K.seriesIndexPk,
                ':id': b.id,
                ':createdAt': b.createdAt.toISOString(),
                ...bySource.values,
              },
            }),
          ),
        );
        if (newer || !bySource.set) return;
        // Not newer (a rerun, or a series recorded before series were indexed by source): index it all the same.
        await this.ignoringConditionFailure(
          this.doc.send(
            UpdateCommand({
              TableName: this.tableName,
              Key: { pk: K.series(b.series), sk: K.seriesSk },
              UpdateExpression: `SET ${bySource.set.slice(2)}`,
              ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(gsi1pk)',
              ExpressionAttributeNames: { '#source': 'source' },
              ExpressionAttributeValues: bySource.values,
            }),
          ),
        );
      });
    });
  }

  async recordSeriesRpo(runId: string, at: string, checks: readonly RpoCheck[]): Promise<void> {
    await this.guard(`record the RPO of run ${runId}`, async () => {
      await forEachLimit(checks, PARALLEL_WRITES, async (c) => {
        await this.ignoringConditionFailure(
          this.doc.send(
            UpdateCommand({
              TableName: this.tableName,
              Key: { pk: K.series(c.series), sk: K.seriesSk },
              UpdateExpression:
                'SET #type = :type, series = :series, gsi2pk = :gsi2pk, gsi2sk = :seriesKey, rpo = :rpo, rpoAt = :at',
              ConditionExpression: 'attribute_not_exists(rpoAt) OR rpoAt <= :at',
              ExpressionAttributeNames: { '#type': 'type' },
              ExpressionAttributeValues: {
                ':type': 'series',
                ':series': c.series,
                ':seriesKey': keyPart(c.series),
                ':gsi2pk': K.seriesIndexPk,
                ':at': at,
                ':rpo': {
                  runId,
                  at,
                  rpoMinutes: c.rpoMinutes,
                  newestBackupAgeMinutes: c.newestBackupAgeMinutes,
                  exceeded: c.exceeded,
                } satisfies SeriesRpo,
              },
            }),
          ),
        );
      });
    });
  }

  async catalogueEntry(backupId: string): Promise<CatalogueEntry | undefined> {
    return this.guard(`read the catalogue entry of ${backupId}`, async () => {
      const item = await this.getItem(K.backup(backupId), K.backupSk);
      return item === undefined ? undefined : toCatalogueEntry(item);
    });
  }

  async verificationsOf(series: string): Promise<VerificationEntry[]> {
    return this.guard(`read the verifications of series ${series}`, async () => {
      const items = await this.query({
        IndexName: LEDGER_TABLE.indexes.gsi1.name,
        KeyConditionExpression: 'gsi1pk = :pk',
        ExpressionAttributeValues: { ':pk': K.coverage(series) },
        ProjectionExpression: 'backupId, lastVerifiedAt, lastVerifiedFingerprint',
      });
      return items.map((item) => ({
        backupId: String(item.backupId),
        ...(item.lastVerifiedAt !== undefined ? { lastVerifiedAt: String(item.lastVerifiedAt) } : {}),
        ...(item.lastVerifiedFingerprint !== undefined
          ? { lastVerifiedFingerprint: String(item.lastVerifiedFingerprint) }
          : {}),
      }));
    });
  }

  async notVerifiedSince(date: Date): Promise<CatalogueEntry[]> {
    return this.guard('list backups not verified recently', async () => {
      const items = await this.query({
        IndexName: LEDGER_TABLE.indexes.gsi2.name,
        KeyConditionExpression: 'gsi2pk = :pk AND gsi2sk < :cutoff',
        ExpressionAttributeValues: { ':pk': K.verifiedIndexPk, ':cutoff': date.toISOString() },
      });
      return items.map(toCatalogueEntry);
    });
  }

  // ---------------------------------------------------------------- first-seen checksums

  async firstSeenOf(backupId: string): Promise<FirstSeenChecksum[]> {
    return this.guard(`read first-seen checksums of ${backupId}`, async () => {
      const items = await this.query({
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': K.backup(backupId), ':prefix': 'SUM#' },
        ConsistentRead: true,
      });
      return items.map(toFirstSeen);
    });
  }

  async recordFirstSeen(
    backupId: string,
    checksums: Array<Omit<FirstSeenChecksum, 'firstSeenAt'>>,
  ): Promise<FirstSeenChecksum[]> {
    return this.guard(`record first-seen checksums of ${backupId}`, async () => {
      const recorded = new Map<string, FirstSeenChecksum>();
      const items = await this.query({
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': K.backup(backupId), ':prefix': 'SUM#' },
        ConsistentRead: true,
      });
      for (const item of items) recorded.set(String(item.path), toFirstSeen(item));
      const previous: FirstSeenChecksum[] = [];
      const fresh: Array<Omit<FirstSeenChecksum, 'firstSeenAt'>> = [];
      for (const c of new Map(checksums.map((c) => [c.path, c])).values()) {
        const earlier = recorded.get(c.path);
        if (earlier) previous.push(earlier);
        else fresh.push(c);
      }
      const firstSeenAt = this.now().toISOString();
      await forEachLimit(fresh, PARALLEL_WRITES * 2, async (c) => {
        try {
          await this.doc.send(
            PutCommand({
              TableName: this.tableName,
              Item: {
                pk: K.backup(backupId),
                sk: K.checksumSk(c.path),
                type: 'checksum',
                backupId,
                path: c.path,
                sha256: c.sha256,
                size: c.size,
                firstSeenAt,
              },
              ConditionExpression: 'attribute_not_exists(pk)',
            }),
          );
        } catch (error) {
          if (!isConditionFailure(error)) throw error;
          // Another run recorded this path first: theirs is the first sight.
          const item = await this.getItem(K.backup(backupId), K.checksumSk(c.path));
          if (item === undefined) throw error;
          previous.push(toFirstSeen(item));
        }
      });
      return previous;
    });
  }

  // ---------------------------------------------------------------- results

  async recordResults(records: readonly StageResultRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.guard(`record ${records.length} stage results`, async () => {
      const unique = new Map(records.map((r) => [`${r.runId}\0${r.backupId}\0${r.stage}`, r]));
      const list = [...unique.values()];
      await this.batchPut(list.map((r) => this.resultItem(r)));
      await Promise.all([this.updateSeriesStatus(list), this.updateBaselines(list), this.markVerified(list)]);
    });
  }

  async seriesHistory(series: string, limit: number): Promise<StageResultRecord[]> {
    return this.guard(`read the history of series ${series}`, async () => {
      const items = await this.query(
        {
          IndexName: LEDGER_TABLE.indexes.gsi1.name,
          KeyConditionExpression: 'gsi1pk = :pk',
          ExpressionAttributeValues: { ':pk': K.series(series) },
          ScanIndexForward: false,
        },
        limit,
      );
      return items.map(toResult);
    });
  }

  async seriesOfSource(source: string): Promise<KnownSeries[]> {
    return this.guard(`read the series of source ${source}`, async () => {
      const items = await this.query({
        IndexName: LEDGER_TABLE.indexes.gsi1.name,
        KeyConditionExpression: 'gsi1pk = :pk',
        ExpressionAttributeValues: { ':pk': K.source(source) },
      });
      return items
        .filter((i) => sourceKey(String(i.source)) === sourceKey(source) && i.latestBackupId !== undefined)
        .map((i) => ({
          series: String(i.series),
          source: String(i.source),
          latestBackupId: String(i.latestBackupId),
          latestBackupCreatedAt: String(i.latestBackupCreatedAt),
        }));
    });
  }

  async latestBySeries(): Promise<SeriesStatus[]> {
    return this.guard('read the latest status of every series', async () => {
      const items = await this.query({
        IndexName: LEDGER_TABLE.indexes.gsi2.name,
        KeyConditionExpression: 'gsi2pk = :pk',
        ExpressionAttributeValues: { ':pk': K.seriesIndexPk },
      });
      return items.map(toSeriesStatus);
    });
  }

  private resultItem(r: StageResultRecord): Item {
    const { json, omitted } = boundedFindings(r.findings);
    return {
      pk: K.run(r.runId),
      sk: K.resultSk(r.backupId, r.stage),
      type: 'result',
      runId: r.runId,
      backupId: r.backupId,
      series: r.series,
      stage: r.stage,
      status: r.status,
      score: r.score,
      durationMs: r.durationMs,
      bytes: r.bytes,
      files: r.files,
      findings: json,
      findingsOmitted: omitted + (r.findingsOmitted ?? 0) || undefined,
      at: r.at,
      gsi1pk: K.series(r.series),
      gsi1sk: boundedSortKey(`${r.at}#${r.stage}#`, `${keyPart(r.runId)}#${keyPart(r.backupId)}`),
      expiresAt: expiresAtFor(r.at, this.retentionDays),
    };
  }

  /** Per series and stage, the newest run's worst result replaces an older run's (conditional update). */
  private async updateSeriesStatus(records: readonly StageResultRecord[]): Promise<void> {
    const groups = groupBy(records, (r) => `${r.series}\0${r.stage}`);
    const winners = [...groups.values()]
      .map((group) => representativeResult(group))
      .filter((r): r is StageResultRecord => r !== undefined);
    await forEachLimit(winners, PARALLEL_WRITES, async (r) => {
      const status = r.status as Status;
      const summary = {
        status,
        rank: statusRank(status),
        runId: r.runId,
        backupId: r.backupId,
        at: r.at,
        score: r.score,
        durationMs: r.durationMs,
        bytes: r.bytes,
        files: r.files,
      };
      await this.ignoringConditionFailure(
        this.doc.send(
          UpdateCommand({
            TableName: this.tableName,
            Key: { pk: K.series(r.series), sk: K.seriesSk },
            UpdateExpression:
              'SET #type = :type, series = :series, gsi2pk = :gsi2pk, gsi2sk = :seriesKey, #stage = :summary',
            ConditionExpression:
              'attribute_not_exists(#stage) OR (#stage.runId = :runId AND #stage.#rank <= :rank) ' +
              'OR (#stage.runId <> :runId AND #stage.#at < :at)',
            ExpressionAttributeNames: { '#type': 'type', '#stage': r.stage, '#rank': 'rank', '#at': 'at' },
            ExpressionAttributeValues: {
              ':type': 'series',
              ':series': r.series,
              ':seriesKey': keyPart(r.series),
              ':gsi2pk': K.seriesIndexPk,
              ':summary': summary,
              ':runId': r.runId,
              ':rank': summary.rank,
              ':at': r.at,
            },
          }),
        ),
      );
    });
  }

  /** Read, fold, write with a version check; a concurrent writer makes us read again. */
  private async updateBaselines(records: readonly StageResultRecord[]): Promise<void> {
    const bySeries = groupBy(records, (r) => r.series);
    await forEachLimit([...bySeries], PARALLEL_WRITES, async ([series, group]) => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const current = await this.readBaseline(series);
        const next = applyResultsToBaseline(current, group);
        if (next === current) return;
        try {
          await this.doc.send(
            PutCommand({
              TableName: this.tableName,
              Item: {
                pk: K.series(series),
                sk: K.baselineSk,
                type: 'baseline',
                series,
                sizes: next.sizes,
                restores: next.restores,
                version: current.version + 1,
                updatedAt: this.now().toISOString(),
              },
              ConditionExpression:
                current.version === 0 ? 'attribute_not_exists(pk)' : 'version = :expectedVersion',
              ...(current.version === 0
                ? {}
                : { ExpressionAttributeValues: { ':expectedVersion': current.version } }),
            }),
          );
          return;
        } catch (error) {
          if (!isConditionFailure(error)) throw error;
          await sleep(5 + Math.random() * 20 * (attempt + 1));
        }
      }
      throw new LedgerError(
        `the baseline of series ${series} kept changing under 20 attempts to update it ` +
          `(too many concurrent runs on ${this.location}?); run again`,
        this.location,
      );
    });
  }

  /** A PASS/WARN integrity or restore result moves the backup's last-verified time forward, never back. */
  private async markVerified(records: readonly StageResultRecord[]): Promise<void> {
    const latest = new Map<string, StageResultRecord>();
    for (const r of records) {
      if (
        (r.stage !== 'integrity' && r.stage !== 'restore') ||
        (r.status !== 'PASS' && r.status !== 'WARN')
      ) {
        continue;
      }
      const current = latest.get(r.backupId);
      if (current === undefined || r.at > current.at) latest.set(r.backupId, r);
    }
    await forEachLimit([...latest.values()], PARALLEL_WRITES, async (r) => {
      await this.ignoringConditionFailure(
        this.doc.send(
          UpdateCommand({
            TableName: this.tableName,
            Key: { pk: K.backup(r.backupId), sk: K.backupSk },
            UpdateExpression:
              'SET #type = :type, backupId = :backupId, series = if_not_exists(series, :series), ' +
              'lastVerifiedAt = :at, lastVerifiedRunId = :runId, gsi2pk = :gsi2pk, gsi2sk = :gsi2sk, ' +
              `gsi1pk = :coverage, gsi1sk = :gsi2sk${r.fingerprint ? ', lastVerifiedFingerprint = :fingerprint' : ''}`,
            ConditionExpression: 'attribute_not_exists(lastVerifiedAt) OR lastVerifiedAt < :at',
            ExpressionAttributeNames: { '#type': 'type' },
            ExpressionAttributeValues: {
              ':type': 'backup',
              ':backupId': r.backupId,
              ':series': r.series,
              ':at': r.at,
              ':runId': r.runId,
              ':gsi2pk': K.verifiedIndexPk,
              ':gsi2sk': `${r.at}#${keyPart(r.backupId)}`,
              ':coverage': K.coverage(r.series),
              ...(r.fingerprint ? { ':fingerprint': r.fingerprint } : {}),
            },
          }),
        ),
      );
    });
  }

  async baseline(series: string): Promise<SeriesBaseline> {
    return this.guard(`read the baseline of series ${series}`, () => this.readBaseline(series));
  }

  private async readBaseline(series: string): Promise<SeriesBaseline> {
    const item = await this.getItem(K.series(series), K.baselineSk);
    if (item === undefined) return emptyBaseline(series);
    return {
      series,
      sizes: (item.sizes as SeriesBaseline['sizes']) ?? [],
      restores: (item.restores as SeriesBaseline['restores']) ?? [],
      version: Number(item.version ?? 0),
    };
  }

  // ---------------------------------------------------------------- copies

  async recordCopy(copy: CopyRecord): Promise<void> {
    await this.guard(`record the copy of ${copy.backupId} at ${copy.location}`, async () => {
      await this.ignoringConditionFailure(
        this.doc.send(
          PutCommand({
            TableName: this.tableName,
            Item: {
              pk: K.backup(copy.backupId),
              sk: K.copySk(copy.location),
              type: 'copy',
              backupId: copy.backupId,
              location: copy.location,
              sha256: copy.sha256,
              bytes: copy.bytes,
              verifiedAt: copy.verifiedAt,
              runId: copy.runId,
            },
            ConditionExpression: 'attribute_not_exists(pk) OR verifiedAt <= :verifiedAt',
            ExpressionAttributeValues: { ':verifiedAt': copy.verifiedAt },
          }),
        ),
      );
    });
  }

  async copiesOf(backupId: string): Promise<CopyRecord[]> {
    return this.guard(`read the copies of ${backupId}`, async () => {
      const items = await this.query({
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': K.backup(backupId), ':prefix': 'COPY#' },
        ConsistentRead: true,
      });
      return items.map((i) => ({
        backupId: String(i.backupId),
        location: String(i.location),
        sha256: String(i.sha256),
        ...(i.bytes !== undefined ? { bytes: Number(i.bytes) } : {}),
        verifiedAt: String(i.verifiedAt),
        ...(i.runId !== undefined ? { runId: String(i.runId) } : {}),
      }));
    });
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client?.destroy();
  }

  /** The SDK client, made (and the SDK loaded) on first use. */
  private async tableClient(): Promise<DynamoDBClient> {
    if (!this.client) {
      const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
      this.client ??= new DynamoDBClient(this.clientConfig);
    }
    return this.client;
  }

  // ---------------------------------------------------------------- plumbing

  /** One Query, following LastEvaluatedKey until `limit` items (or all) are read. */
  private async query(input: Omit<QueryCommandInput, 'TableName'>, limit?: number): Promise<Item[]> {
    const items: Item[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        QueryCommand({
          ...input,
          TableName: this.tableName,
          ...(limit !== undefined ? { Limit: limit - items.length } : {}),
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      items.push(...(out.Items ?? []));
      startKey = out.LastEvaluatedKey;
    } while (startKey && (limit === undefined || items.length < limit));
    return items;
  }

  private async getItem(pk: string, sk: string): Promise<Item | undefined> {
    const out = await this.doc.send(
      GetCommand({ TableName: this.tableName, Key: { pk, sk }, ConsistentRead: true }),
    );
    return out.Item;
  }

  private async batchPut(items: readonly Item[]): Promise<void> {
    const chunks: Item[][] = [];
    for (let i = 0; i < items.length; i += BATCH_WRITE_SIZE)
      chunks.push(items.slice(i, i + BATCH_WRITE_SIZE));
    await forEachLimit(chunks, 4, async (chunk) => {
      let requests = chunk.map((Item) => ({ PutRequest: { Item } }));
      for (let attempt = 0; requests.length > 0; attempt++) {
        if (attempt > BATCH_RETRIES) {
          throw new LedgerError(
            `${requests.length} items stayed unprocessed after ${BATCH_RETRIES} retries of BatchWriteItem ` +
              `on ${this.location} (throttled?); run again`,
            this.location,
          );
        }
        if (attempt > 0) await sleep(Math.min(2000, 25 * 2 ** attempt));
        const out = await this.doc.send(BatchWriteCommand({ RequestItems: { [this.tableName]: requests } }));
        requests = (out.UnprocessedItems?.[this.tableName] ?? []) as typeof requests;
      }
    });
  }

  /** Items by pk, for keys given as {pk, sk}. */
  private async batchGet(
    keys: ReadonlyArray<{ pk: string; sk: string }>,
    attributes: readonly string[],
  ): Promise<Map<string, Item>> {
    const found = new Map<string, Item>();
    const names = Object.fromEntries(attributes.map((a, i) => [`#a${i}`, a]));
    const projection = Object.keys(names).join(', ');
    for (let i = 0; i < keys.length; i += BATCH_GET_SIZE) {
      let pending: Array<Record<string, unknown>> = keys.slice(i, i + BATCH_GET_SIZE);
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > BATCH_RETRIES) {
          throw new LedgerError(
            `${pending.length} keys stayed unprocessed after ${BATCH_RETRIES} retries of BatchGetItem ` +
              `on ${this.location} (throttled?); run again`,
            this.location,
          );
        }
        if (attempt > 0) await sleep(Math.min(2000, 25 * 2 ** attempt));
        const out = await this.doc.send(
          BatchGetCommand({
            RequestItems: {
              [this.tableName]: {
                Keys: pending,
                ConsistentRead: true,
                ProjectionExpression: projection,
                ExpressionAttributeNames: names,
              },
            },
          }),
        );
        for (const item of out.Responses?.[this.tableName] ?? []) found.set(String(item.pk), item);
        pending = out.UnprocessedKeys?.[this.tableName]?.Keys ?? [];
      }
    }
    return found;
  }

  /** Whether a conditional write was made (false when its condition did not hold). */
  private async conditionHolds(write: Promise<unknown>): Promise<boolean> {
    try {
      await write;
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return false;
    }
  }

  private async ignoringConditionFailure(write: Promise<unknown>): Promise<void> {
    try {
      await write;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  /** The boundary: whatever fails below becomes a LedgerError that says what, where and what to try. */
  private async guard<T>(operation: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      if (error instanceof LedgerError) throw error;
      throw new LedgerError(this.describe(operation, error), this.location, { cause: error });
    }
  }

  private describe(operation: string, error: unknown): string {
    const name = errorName(error);
    const code = (error as { code?: string } | undefined)?.code;
    const message = error instanceof Error ? error.message : String(error);
    const where = `ledger ${this.location}`;
    if (name === 'ResourceNotFoundException') {
      return (
        `could not ${operation}: table "${this.tableName}" does not exist at ${this.endpointLabel}. ` +
        'Deploy the stack that creates it, check the region and endpoint, or use --ledger DIR for a local ledger'
      );
    }
    const network = ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'EAI_AGAIN'];
    if (
      (code && network.includes(code)) ||
      name === 'TimeoutError' ||
      network.some((c) => message.includes(c)) ||
      /socket hang up|connect/i.test(message)
    ) {
      return (
        `could not ${operation}: the ${where} cannot be reached at ${this.endpointLabel} (${code ?? name}: ${message}). ` +
        'Check that the endpoint is up (AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL) and reachable'
      );
    }
    if (
      name === 'CredentialsProviderError' ||
      name === 'UnrecognizedClientException' ||
      name === 'InvalidSignatureException' ||
      name === 'ExpiredTokenException'
    ) {
      return `could not ${operation}: no valid AWS credentials for the ${where} (${name}: ${message}). Configure credentials for the account that holds the table`;
    }
    if (name === 'AccessDeniedException') {
      return `could not ${operation}: access to the ${where} was denied (${message}). The role needs read and write access to table "${this.tableName}" and its indexes`;
    }
    if (name === 'ProvisionedThroughputExceededException' || name === 'ThrottlingException') {
      return `could not ${operation}: the ${where} is throttling requests (${message}); run again later`;
    }
    return `could not ${operation} in the ${where}: ${name}: ${message}`;
  }
}

// ------------------------------------------------------------------ item mapping

function catalogueFields(b: Backup): Record<(typeof CATALOGUE_FIELDS)[number], string | number> {
  return {
    series: b.series,
    kind: b.kind,
    source: b.source,
    key: b.key,
    name: b.name,
    location: backupLocation(b),
    createdAt: b.createdAt.toISOString(),
    objects: b.objects,
    bytes: b.bytes,
  };
}

function toRun(item: Item): RunRecord {
  return {
    runId: String(item.runId),
    trigger: item.trigger as RunRecord['trigger'],
    sources: (item.sources as string[] | undefined) ?? [],
    ...(item.command !== undefined ? { command: String(item.command) } : {}),
    startedAt: String(item.startedAt),
    ...(item.finishedAt !== undefined ? { finishedAt: String(item.finishedAt) } : {}),
    status: item.status as RunRecord['status'],
    ...(item.counts !== undefined ? { counts: item.counts as RunRecord['counts'] } : {}),
    ...(item.error !== undefined ? { error: String(item.error) } : {}),
    ...(typeof item.summary === 'string'
      ? { summary: JSON.parse(item.summary) as RunRecord['summary'] }
      : {}),
  };
}

function toResult(item: Item): StageResultRecord {
  return {
    runId: String(item.runId),
    backupId: String(item.backupId),
    series: String(item.series),
    stage: item.stage as Stage,
    status: item.status as StageResultRecord['status'],
    ...(item.score !== undefined ? { score: Number(item.score) } : {}),
    durationMs: Number(item.durationMs ?? 0),
    ...(item.bytes !== undefined ? { bytes: Number(item.bytes) } : {}),
    ...(item.files !== undefined ? { files: Number(item.files) } : {}),
    findings: JSON.parse(String(item.findings ?? '[]')) as Finding[],
    at: String(item.at),
    ...(item.findingsOmitted !== undefined ? { findingsOmitted: Number(item.findingsOmitted) } : {}),
  };
}

/** A backup item's place in its series' coverage order: when it was last verified (its gsi2 sort key), or never. */
function verifiedKeyOf(existing: Item | undefined, backupId: string): string {
  const known = existing?.gsi2sk;
  return typeof known === 'string' ? known : `${K.neverVerified}#${keyPart(backupId)}`;
}

function toCatalogueEntry(item: Item): CatalogueEntry {
  const optional = (field: string) =>
    item[field] !== undefined ? { [field]: String(item[field]) } : ({} as Record<string, never>);
  return {
    backupId: String(item.backupId),
    series: String(item.series ?? ''),
    kind: (item.kind as CatalogueEntry['kind']) ?? 'archive',
    source: String(item.source ?? ''),
    key: String(item.key ?? ''),
    name: String(item.name ?? ''),
    location: String(item.location ?? ''),
    createdAt: String(item.createdAt ?? ''),
    objects: Number(item.objects ?? 0),
    bytes: Number(item.bytes ?? 0),
    ...optional('firstSeenAt'),
    ...optional('firstSeenRunId'),
    ...optional('lastVerifiedAt'),
    ...optional('lastVerifiedRunId'),
  };
}

function toFirstSeen(item: Item): FirstSeenChecksum {
  return {
    path: String(item.path),
    sha256: String(item.sha256),
    size: Number(item.size),
    firstSeenAt: String(item.firstSeenAt),
  };
}

function toSeriesStatus(item: Item): SeriesStatus {
  const stages: Partial<Record<Stage, StageSummary>> = {};
  let lastCheckedAt: string | undefined;
  for (const stage of STAGES) {
    const raw = item[stage] as (StageSummary & { rank?: number }) | undefined;
    if (!raw) continue;
    const { rank: _rank, ...summary } = raw;
    stages[stage] = summary;
    if (lastCheckedAt === undefined || summary.at > lastCheckedAt) lastCheckedAt = summary.at;
  }
  return {
    series: String(item.series),
    status: seriesStatusOf(stages),
    stages,
    ...(item.latestBackupId !== undefined
      ? {
          latestBackup: {
            backupId: String(item.latestBackupId),
            createdAt: String(item.latestBackupCreatedAt),
          },
        }
      : {}),
    ...(lastCheckedAt !== undefined ? { lastCheckedAt } : {}),
    ...(item.rpo !== undefined ? { rpo: toSeriesRpo(item.rpo as Item) } : {}),
  };
}

function toSeriesRpo(raw: Item): SeriesRpo {
  return {
    runId: String(raw.runId),
    at: String(raw.at),
    rpoMinutes: Number(raw.rpoMinutes),
    newestBackupAgeMinutes: Number(raw.newestBackupAgeMinutes),
    exceeded: raw.exceeded === true,
  };
}

/**
 * Findings as JSON within FINDINGS_BUDGET UTF-8 bytes, keeping as many of the first ones as fit.
 * When some are left out, a last finding says how many and of which codes, under the most severe
 * code left out (the result's status already counts them), so the report keeps a trace of them.
 */
function boundedFindings(findings: readonly Finding[]): { json: string; omitted: number } {
  const json = JSON.stringify(findings);
  if (Buffer.byteLength(json) <= FINDINGS_BUDGET) return { json, omitted: 0 };
  const kept: string[] = [];
  let bytes = 2;
  for (const f of findings) {
    const piece = JSON.stringify(f);
    const size = Buffer.byteLength(piece) + 1;
    if (bytes + size > FINDINGS_BUDGET - OMITTED_NOTE_BUDGET) break;
    kept.push(piece);
    bytes += size;
  }
  const rest = findings.slice(kept.length);
  const counts = new Map<FindingCode, number>();
  for (const f of rest) counts.set(f.code, (counts.get(f.code) ?? 0) + 1);
  const code = rest.find((f) => f.severity === 'error')?.code ?? (rest[0] as Finding).code;
  const byCode = [...counts].map(([c, n]) => `${c} x${n}`).join(', ');
  const note = finding(
    code,
    `${rest.length} more findings (${byCode}) were left out of the ledger's record of this result: a DynamoDB item holds at most 400 KB; the first ${kept.length} are kept`.slice(
      0,
      OMITTED_NOTE_BUDGET / 4,
    ),
    rest[0]?.backup !== undefined ? { backup: rest[0].backup } : {},
  );
  kept.push(JSON.stringify(note));
  return { json: `[${kept.join(',')}]`, omitted: rest.length };
}

// ------------------------------------------------------------------ small helpers

function errorName(error: unknown): string {
  if (error && typeof error === 'object' && 'name' in error) return String((error as { name: unknown }).name);
  return 'Error';
}

function isConditionFailure(error: unknown): boolean {
  return errorName(error) === 'ConditionalCheckFailedException';
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  let failed = false;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (!failed && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  });
  await Promise.all(workers);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The document commands sent to DynamoDB through the SDK's DocumentClient (loaded on first send). */
class SdkDocuments implements DocumentSender {
  private doc:
    | Promise<{ send(command: unknown): Promise<unknown>; commands: Record<string, unknown> }>
    | undefined;

  constructor(private readonly client: () => Promise<DynamoDBClient>) {}

  async send<K extends DocumentCommandKind>(command: DocumentCommand<K>): Promise<DocumentCommands[K][1]> {
    this.doc ??= (async () => {
      const lib = await import('@aws-sdk/lib-dynamodb');
      const doc = lib.DynamoDBDocumentClient.from(await this.client(), {
        marshallOptions: { removeUndefinedValues: true },
      });
      return {
        send: (c: unknown) => doc.send(c as never),
        commands: lib as unknown as Record<string, unknown>,
      };
    })();
    const { send, commands } = await this.doc;
    const Command = commands[`${command.kind}Command`] as new (input: unknown) => unknown;
    return (await send(new Command(command.input))) as DocumentCommands[K][1];
  }
}
