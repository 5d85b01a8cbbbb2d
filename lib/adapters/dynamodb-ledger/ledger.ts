import type { DynamoDBClient, DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import type { RpoCheck } from '../../core/compliance.ts';
import { LedgerError } from '../../core/errors.ts';
import type {
  CatalogueEntry,
  CopyRecord,
  KnownSeries,
  Ledger,
  NewRun,
  RunDetail,
  RunOutcome,
  RunRecord,
  SeriesBaseline,
  SeriesStatus,
  StageResultRecord,
  VerificationEntry,
} from '../../core/ledger.ts';
import { uniqueResults } from '../../core/ledger-rules.ts';
import type { Backup } from '../../core/model.ts';
import type { FirstSeenChecksum } from '../../core/ports.ts';
import { type DocumentSender, PutCommand } from '../document-commands.ts';
import { LEDGER_TABLE } from '../ledger-schema.ts';
import { recordCatalogue, recordSeriesRpo } from './catalogue.ts';
import { finishRunCommand } from './commands.ts';
import {
  forEachLimit,
  ignoringConditionFailure,
  isConditionFailure,
  PARALLEL_WRITES,
  TableIo,
} from './io.ts';
import {
  checksumItem,
  copyItem,
  runItem,
  toCatalogueEntry,
  toCopy,
  toFirstSeen,
  toKnownSeries,
  toResult,
  toRun,
  toSeriesStatus,
  toVerification,
} from './items.ts';
import { K, sourceKey } from './keys.ts';
import { readBaseline, recordResults } from './results.ts';
import { SdkDocuments } from './sdk-documents.ts';
import { ensureTable } from './table.ts';

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

const { gsi1, gsi2 } = LEDGER_TABLE.indexes;

export class DynamoDbLedger implements Ledger {
  readonly location: string;
  readonly tableName: string;
  private client: DynamoDBClient | undefined;
  private readonly clientConfig: DynamoDBClientConfig;
  private readonly io: TableIo;
  private readonly ownsClient: boolean;
  private readonly retentionDays: number;
  private readonly now: () => Date;

  constructor(options: DynamoDbLedgerOptions) {
    this.tableName = options.tableName;
    this.location = options.location ?? `dynamodb://${options.tableName}`;
    this.ownsClient = options.client === undefined;
    this.client = options.client;
    this.clientConfig = options.clientConfig ?? {};
    this.retentionDays = options.retentionDays ?? 400;
    this.now = options.now ?? (() => new Date());
    const endpoint = options.clientConfig?.endpoint;
    const endpointLabel = typeof endpoint === 'string' ? endpoint : 'the configured DynamoDB endpoint';
    const doc = options.documents ?? new SdkDocuments(() => this.tableClient());
    this.io = new TableIo(doc, this.tableName, this.location, endpointLabel);
  }

  /** Creates the table if missing and enables TTL where the server supports it (local and embedded use). */
  async ensureTable(): Promise<void> {
    await ensureTable(this.io, () => this.tableClient());
  }

  async startRun(run: NewRun): Promise<RunRecord> {
    return this.io.guard(`start run ${run.runId}`, async () => {
      const record: RunRecord = {
        runId: run.runId,
        trigger: run.trigger,
        sources: [...run.sources],
        ...(run.command !== undefined ? { command: run.command } : {}),
        startedAt: run.startedAt ?? this.now().toISOString(),
        status: 'RUNNING',
      };
      const existing = await this.io.putIfAbsent(runItem(record, this.retentionDays));
      return existing === undefined ? record : toRun(existing);
    });
  }

  async finishRun(runId: string, outcome: RunOutcome): Promise<RunRecord> {
    return this.io.guard(`finish run ${runId}`, async () => {
      const finishedAt = outcome.finishedAt ?? this.now().toISOString();
      try {
        const out = await this.io.doc.send(finishRunCommand(this.tableName, runId, outcome, finishedAt));
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
    return this.io.guard('list recent runs', async () =>
      (await this.byIndex(gsi1.name, K.runsIndexPk, limit)).map(toRun),
    );
  }

  async getRun(runId: string): Promise<RunDetail | undefined> {
    return this.io.guard(`read run ${runId}`, async () => {
      const items = await this.io.partition(K.run(runId));
      const runItem = items.find((i) => i.sk === K.runSk);
      if (runItem === undefined) return undefined;
      return { run: toRun(runItem), results: items.filter((i) => i.type === 'result').map(toResult) };
    });
  }

  async recordCatalogue(runId: string, backups: readonly Backup[]): Promise<void> {
    await this.io.guard(`record the catalogue of run ${runId}`, () =>
      recordCatalogue(this.io, runId, backups, this.now().toISOString()),
    );
  }

  async recordSeriesRpo(runId: string, at: string, checks: readonly RpoCheck[]): Promise<void> {
    await this.io.guard(`record the RPO of run ${runId}`, () => recordSeriesRpo(this.io, runId, at, checks));
  }

  async catalogueEntry(backupId: string): Promise<CatalogueEntry | undefined> {
    return this.io.guard(`read the catalogue entry of ${backupId}`, async () => {
      const item = await this.io.getItem(K.backup(backupId), K.backupSk);
      return item === undefined ? undefined : toCatalogueEntry(item);
    });
  }

  async verificationsOf(series: string): Promise<VerificationEntry[]> {
    return this.io.guard(`read the verifications of series ${series}`, async () => {
      const items = await this.io.query({
        IndexName: gsi1.name,
        KeyConditionExpression: 'gsi1pk = :pk',
        ExpressionAttributeValues: { ':pk': K.coverage(series) },
        ProjectionExpression: 'backupId, lastVerifiedAt, lastVerifiedFingerprint',
      });
      return items.map(toVerification);
    });
  }

  async notVerifiedSince(date: Date): Promise<CatalogueEntry[]> {
    return this.io.guard('list backups not verified recently', async () => {
      const items = await this.io.query({
        IndexName: gsi2.name,
        KeyConditionExpression: 'gsi2pk = :pk AND gsi2sk < :cutoff',
        ExpressionAttributeValues: { ':pk': K.verifiedIndexPk, ':cutoff': date.toISOString() },
      });
      return items.map(toCatalogueEntry);
    });
  }

  async firstSeenOf(backupId: string): Promise<FirstSeenChecksum[]> {
    return this.io.guard(`read first-seen checksums of ${backupId}`, async () =>
      (await this.io.partition(K.backup(backupId), K.checksumPrefix)).map(toFirstSeen),
    );
  }

  /** Records the checksums not seen before; returns the earlier sightings of the others. */
  async recordFirstSeen(
    backupId: string,
    checksums: Array<Omit<FirstSeenChecksum, 'firstSeenAt'>>,
  ): Promise<FirstSeenChecksum[]> {
    return this.io.guard(`record first-seen checksums of ${backupId}`, async () => {
      const recorded = new Map<string, FirstSeenChecksum>();
      for (const item of await this.io.partition(K.backup(backupId), K.checksumPrefix))
        recorded.set(String(item.path), toFirstSeen(item));
      const previous: FirstSeenChecksum[] = [];
      const fresh: Array<Omit<FirstSeenChecksum, 'firstSeenAt'>> = [];
      for (const c of new Map(checksums.map((c) => [c.path, c])).values()) {
        const earlier = recorded.get(c.path);
        if (earlier) previous.push(earlier);
        else fresh.push(c);
      }
      const firstSeenAt = this.now().toISOString();
      await forEachLimit(fresh, PARALLEL_WRITES * 2, async (c) => {
        // Another run may have recorded this path first: theirs is the first sight.
        const earlier = await this.io.putIfAbsent(checksumItem(backupId, { ...c, firstSeenAt }));
        if (earlier !== undefined) previous.push(toFirstSeen(earlier));
      });
      return previous;
    });
  }

  async recordResults(records: readonly StageResultRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.io.guard(`record ${records.length} stage results`, () =>
      recordResults(this.io, uniqueResults(records), this.retentionDays, this.now),
    );
  }

  async seriesHistory(series: string, limit: number): Promise<StageResultRecord[]> {
    return this.io.guard(`read the history of series ${series}`, async () =>
      (await this.byIndex(gsi1.name, K.series(series), limit)).map(toResult),
    );
  }

  async seriesOfSource(source: string): Promise<KnownSeries[]> {
    return this.io.guard(`read the series of source ${source}`, async () => {
      const items = await this.io.query({
        IndexName: gsi1.name,
        KeyConditionExpression: 'gsi1pk = :pk',
        ExpressionAttributeValues: { ':pk': K.source(source) },
      });
      return items
        .filter((i) => sourceKey(String(i.source)) === sourceKey(source) && i.latestBackupId !== undefined)
        .map(toKnownSeries);
    });
  }

  async latestBySeries(): Promise<SeriesStatus[]> {
    return this.io.guard('read the latest status of every series', async () => {
      const items = await this.io.query({
        IndexName: gsi2.name,
        KeyConditionExpression: 'gsi2pk = :pk',
        ExpressionAttributeValues: { ':pk': K.seriesIndexPk },
      });
      return items.map(toSeriesStatus);
    });
  }

  async baseline(series: string): Promise<SeriesBaseline> {
    return this.io.guard(`read the baseline of series ${series}`, () => readBaseline(this.io, series));
  }

  /** A copy's record is replaced only by a verification at least as recent. */
  async recordCopy(copy: CopyRecord): Promise<void> {
    await this.io.guard(`record the copy of ${copy.backupId} at ${copy.location}`, () =>
      ignoringConditionFailure(
        this.io.doc.send(
          PutCommand({
            TableName: this.tableName,
            Item: copyItem(copy),
            ConditionExpression: 'attribute_not_exists(pk) OR verifiedAt <= :verifiedAt',
            ExpressionAttributeValues: { ':verifiedAt': copy.verifiedAt },
          }),
        ),
      ),
    );
  }

  async copiesOf(backupId: string): Promise<CopyRecord[]> {
    return this.io.guard(`read the copies of ${backupId}`, async () =>
      (await this.io.partition(K.backup(backupId), K.copyPrefix)).map(toCopy),
    );
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client?.destroy();
  }

  /** An index partition, newest first. */
  private byIndex(indexName: string, pk: string, limit: number) {
    return this.io.query(
      {
        IndexName: indexName,
        KeyConditionExpression: `${indexName}pk = :pk`,
        ExpressionAttributeValues: { ':pk': pk },
        ScanIndexForward: false,
      },
      limit,
    );
  }

  /** The SDK client, made (and the SDK loaded) on first use. */
  private async tableClient(): Promise<DynamoDBClient> {
    if (!this.client) {
      const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
      this.client ??= new DynamoDBClient(this.clientConfig);
    }
    return this.client;
  }
}
