import type { QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { LedgerError } from '../../core/errors.ts';
import { forEachLimited as forEachLimit } from '../../core/limit.ts';
import { type Backoff, backoffMs } from '../../core/retry.ts';
import {
  BatchGetCommand,
  BatchWriteCommand,
  type DocumentSender,
  GetCommand,
  PutCommand,
  QueryCommand,
} from '../document-commands.ts';
import { describeFailure } from './errors.ts';
import type { Item } from './items.ts';

const BATCH_WRITE_SIZE = 25;
const BATCH_GET_SIZE = 100;
const BATCH_RETRIES = 8;
/** Conditional writes in flight at once per ledger call. */
export const PARALLEL_WRITES = 8;

/** The ledger table as the ledger reads and writes it: reads that page, batches that retry, conditional writes. */
export class TableIo {
  constructor(
    readonly doc: DocumentSender,
    readonly tableName: string,
    readonly location: string,
    readonly endpointLabel: string,
  ) {}

  /** The boundary: whatever fails below becomes a LedgerError that says what, where and what to try. */
  async guard<T>(operation: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      if (error instanceof LedgerError) throw error;
      const message = describeFailure(operation, error, this.tableName, this.location, this.endpointLabel);
      throw new LedgerError(message, this.location, { cause: error });
    }
  }

  /** One Query, following LastEvaluatedKey until `limit` items (or all) are read. */
  async query(input: Omit<QueryCommandInput, 'TableName'>, limit?: number): Promise<Item[]> {
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

  /** The items of one partition (those whose sort key starts with `prefix`), read consistently. */
  async partition(pk: string, prefix?: string): Promise<Item[]> {
    return this.query({
      KeyConditionExpression: prefix === undefined ? 'pk = :pk' : 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': pk, ...(prefix === undefined ? {} : { ':prefix': prefix }) },
      ConsistentRead: true,
    });
  }

  async getItem(pk: string, sk: string): Promise<Item | undefined> {
    const out = await this.doc.send(
      GetCommand({ TableName: this.tableName, Key: { pk, sk }, ConsistentRead: true }),
    );
    return out.Item;
  }

  /**
   * Puts the item unless one with its key exists; returns that existing item (undefined when written).
   * The item comes back with the failed condition (ReturnValuesOnConditionCheckFailure); a server that
   * does not send it back (dynalite) costs one read.
   */
  async putIfAbsent(item: Item): Promise<Item | undefined> {
    try {
      await this.doc.send(
        PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return undefined;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const existing = conditionFailureItem(error) ?? (await this.getItem(String(item.pk), String(item.sk)));
      if (existing === undefined) throw error;
      return existing;
    }
  }

  async batchPut(items: readonly Item[]): Promise<void> {
    const chunks: Item[][] = [];
    for (let i = 0; i < items.length; i += BATCH_WRITE_SIZE)
      chunks.push(items.slice(i, i + BATCH_WRITE_SIZE));
    await forEachLimit(chunks, 4, async (chunk) => {
      let requests = chunk.map((Item) => ({ PutRequest: { Item } }));
      for (let attempt = 0; requests.length > 0; attempt++) {
        await this.beforeBatchAttempt(attempt, requests.length, 'items', 'BatchWriteItem');
        const out = await this.doc.send(BatchWriteCommand({ RequestItems: { [this.tableName]: requests } }));
        requests = (out.UnprocessedItems?.[this.tableName] ?? []) as typeof requests;
      }
    });
  }

  /** Items by pk, for keys given as {pk, sk}. */
  async batchGet(
    keys: ReadonlyArray<{ pk: string; sk: string }>,
    attributes: readonly string[],
  ): Promise<Map<string, Item>> {
    const found = new Map<string, Item>();
    const names = Object.fromEntries(attributes.map((a, i) => [`#a${i}`, a]));
    const projection = Object.keys(names).join(', ');
    for (let i = 0; i < keys.length; i += BATCH_GET_SIZE) {
      let pending: Array<Record<string, unknown>> = keys.slice(i, i + BATCH_GET_SIZE);
      for (let attempt = 0; pending.length > 0; attempt++) {
        await this.beforeBatchAttempt(attempt, pending.length, 'keys', 'BatchGetItem');
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

  /** Backs off before retrying what a batch left unprocessed; gives up after BATCH_RETRIES. */
  private async beforeBatchAttempt(attempt: number, left: number, what: string, operation: string) {
    if (attempt > BATCH_RETRIES) {
      throw new LedgerError(
        `${left} ${what} stayed unprocessed after ${BATCH_RETRIES} retries of ${operation} ` +
          `on ${this.location} (throttled?); run again`,
        this.location,
      );
    }
    if (attempt > 0) await sleep(backoffMs(attempt, UNPROCESSED_BACKOFF));
  }
}

/** Whether a conditional write was made (false when its condition did not hold). */
export async function conditionHolds(write: Promise<unknown>): Promise<boolean> {
  try {
    await write;
    return true;
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    return false;
  }
}

export async function ignoringConditionFailure(write: Promise<unknown>): Promise<void> {
  await conditionHolds(write);
}

export function errorName(error: unknown): string {
  if (error && typeof error === 'object' && 'name' in error) return String((error as { name: unknown }).name);
  return 'Error';
}

export function isConditionFailure(error: unknown): boolean {
  return errorName(error) === 'ConditionalCheckFailedException';
}

/** The item a failed condition returned (ReturnValuesOnConditionCheckFailure), as a document. */
function conditionFailureItem(error: unknown): Item | undefined {
  const item = (error as { Item?: unknown }).Item;
  return item !== null && typeof item === 'object' && Object.keys(item).length > 0
    ? (item as Item)
    : undefined;
}

/** The project's one worker pool, under the name the ledger's writers use. */
export { forEachLimit };

/** Unprocessed batch items (which the SDK does not retry): 50 ms doubling to 2 s, no jitter. */
const UNPROCESSED_BACKOFF: Backoff = { baseMs: 50, capMs: 2000, minShare: 1 };

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
