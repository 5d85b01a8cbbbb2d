import type BetterSqlite3 from 'better-sqlite3';
import type {
  DocumentCommand,
  DocumentCommandKind,
  DocumentCommands,
  DocumentSender,
} from './document-commands.ts';
import {
  applyUpdate,
  compareUtf8,
  ExpressionError,
  evaluate,
  type Item,
  type Names,
  parseCondition,
  parseProjection,
  parseUpdate,
  type Values,
} from './item-expressions.ts';
import { LEDGER_TABLE } from './ledger-schema.ts';

/** DynamoDB's limits, which the ledger is written to respect; enforced so the embedded ledger cannot hide a breach. */
const ITEM_BYTES = 400 * 1024;
const PARTITION_KEY_BYTES = 2048;
const SORT_KEY_BYTES = 1024;

const { partitionKey: PK, sortKey: SK, ttlAttribute } = LEDGER_TABLE;
const INDEXES = Object.values(LEDGER_TABLE.indexes);

class ConditionalCheckFailedException extends Error {
  override readonly name = 'ConditionalCheckFailedException';
  /** The item as it was, when the request asked for it (ReturnValuesOnConditionCheckFailure: ALL_OLD). */
  readonly Item: Item | undefined;
  constructor(item: Item | undefined) {
    super('The conditional request failed');
    this.Item = item;
  }
}

/** Commands that write: they join the turn's transaction. */
const WRITES = new Set<DocumentCommandKind>(['Put', 'Update', 'Delete', 'BatchWrite']);

interface Row {
  item: string;
}

/**
 * One ledger table in a SQLite file, answering the DocumentClient commands DynamoDbLedger sends
 * (Get, Put, Update, Delete, Query, Scan, BatchGet, BatchWrite) with DynamoDB's semantics:
 * conditions checked and the write made in one step, the table and its two indexes ordered by
 * UTF-8 bytes, index entries only for items that hold both index keys as strings.
 */
export class SqliteDocuments implements DocumentSender {
  private readonly get: BetterSqlite3.Statement<[string, string], Row>;
  private readonly put: BetterSqlite3.Statement<unknown[]>;
  private readonly del: BetterSqlite3.Statement<[string, string]>;
  private readonly byPartition: BetterSqlite3.Statement<[string], Row>;
  private readonly byIndex: Record<string, BetterSqlite3.Statement<[string], Row>>;
  private readonly begin: BetterSqlite3.Statement<[]>;
  private readonly commit: BetterSqlite3.Statement<[]>;
  private commitFailure: Error | undefined;

  constructor(private readonly db: BetterSqlite3.Database) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(`CREATE TABLE IF NOT EXISTS items (
      pk TEXT NOT NULL, sk TEXT NOT NULL,
      gsi1pk TEXT, gsi1sk TEXT, gsi2pk TEXT, gsi2sk TEXT,
      expiresAt INTEGER, item TEXT NOT NULL,
      PRIMARY KEY (pk, sk)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk) WHERE gsi1pk IS NOT NULL;
    CREATE INDEX IF NOT EXISTS items_gsi2 ON items (gsi2pk, gsi2sk) WHERE gsi2pk IS NOT NULL;`);
    this.get = db.prepare('SELECT item FROM items WHERE pk = ? AND sk = ?');
    this.put = db.prepare(
      'INSERT OR REPLACE INTO items (pk, sk, gsi1pk, gsi1sk, gsi2pk, gsi2sk, expiresAt, item) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.del = db.prepare('DELETE FROM items WHERE pk = ? AND sk = ?');
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
    this.byPartition = db.prepare('SELECT item FROM items WHERE pk = ?');
    this.byIndex = Object.fromEntries(
      INDEXES.map((index) => [
        index.name,
        db.prepare(`SELECT item FROM items WHERE ${index.partitionKey} = ?`) as BetterSqlite3.Statement<
          [string],
          Row
        >,
      ]),
    );
  }

  async send<K extends DocumentCommandKind>(command: DocumentCommand<K>): Promise<DocumentCommands[K][1]> {
    if (this.commitFailure) throw this.commitFailure;
    if (!WRITES.has(command.kind)) return this.run(command as DocumentCommand) as DocumentCommands[K][1];
    this.groupWrites();
    try {
      return this.run(command as DocumentCommand) as DocumentCommands[K][1];
    } catch (error) {
      // SQLite rolled the whole transaction back (disk full, I/O error): the turn's other writes are lost too.
      if (!this.db.inTransaction)
        this.commitFailure = error instanceof Error ? error : new Error(String(error));
      throw error;
    }
  }

  /**
   * Group commit: the writes of one turn of the event loop (a backup's results and all they
   * update) share one transaction, committed as soon as the turn ends. Each command stays atomic
   * on its own (a failed condition writes nothing); a commit per command cost most of a small
   * backup's time on the main thread. The ledger folder's lock keeps other processes out meanwhile.
   */
  private groupWrites(): void {
    if (this.db.inTransaction) return;
    this.begin.run();
    setImmediate(() => this.commitNow());
  }

  /** Commits the writes grouped so far; a failure is thrown by the next command and by close(). */
  private commitNow(): void {
    if (!this.db.open || !this.db.inTransaction) return;
    try {
      this.commit.run();
    } catch (error) {
      this.commitFailure = error instanceof Error ? error : new Error(String(error));
    }
  }

  /** Deletes every item whose TTL attribute is before `nowSeconds`, as DynamoDB's TTL does; returns how many. */
  deleteExpired(nowSeconds: number): number {
    return this.db.prepare('DELETE FROM items WHERE expiresAt IS NOT NULL AND expiresAt < ?').run(nowSeconds)
      .changes;
  }

  /** Writes items as they are (a migration), in one transaction. */
  putAll(items: readonly Item[]): void {
    this.db.transaction(() => {
      for (const item of items) this.write(clean(item));
    })();
  }

  close(): void {
    this.commitNow();
    this.db.close();
    if (this.commitFailure) throw this.commitFailure;
  }

  private run(command: DocumentCommand): unknown {
    if (command.kind === 'Get') {
      const input = command.input as DocumentCommands['Get'][0];
      return { Item: this.read(input.Key as Item) };
    }
    if (command.kind === 'Put') {
      const input = command.input as DocumentCommands['Put'][0];
      const { Item: raw, ConditionExpression, ExpressionAttributeNames, ExpressionAttributeValues } = input;
      const item = clean(raw as Item);
      const key = keyOf(item);
      this.check(key, input, ConditionExpression, ExpressionAttributeNames, ExpressionAttributeValues);
      this.write(item);
      return {};
    }
    if (command.kind === 'Update') {
      const input = command.input as DocumentCommands['Update'][0];
      const key = keyOf(input.Key as Item);
      const current = this.check(
        key,
        input,
        input.ConditionExpression,
        input.ExpressionAttributeNames,
        input.ExpressionAttributeValues,
      );
      const plan = parseUpdate(input.UpdateExpression ?? '', input.ExpressionAttributeNames);
      const next = clean(applyUpdate(current, key, plan, input.ExpressionAttributeValues));
      this.write(next);
      return input.ReturnValues === 'ALL_NEW' ? { Attributes: next } : {};
    }
    if (command.kind === 'Delete') {
      const input = command.input as DocumentCommands['Delete'][0];
      const key = keyOf(input.Key as Item);
      this.check(
        key,
        input,
        input.ConditionExpression,
        input.ExpressionAttributeNames,
        input.ExpressionAttributeValues,
      );
      this.del.run(key[PK] as string, key[SK] as string);
      return {};
    }
    if (command.kind === 'Query') return this.query(command.input as DocumentCommands['Query'][0]);
    if (command.kind === 'Scan') return this.scan(command.input as DocumentCommands['Scan'][0]);
    if (command.kind === 'BatchWrite') {
      const input = command.input as DocumentCommands['BatchWrite'][0];
      const requests = Object.values(input.RequestItems ?? {}).flat();
      this.db.transaction(() => {
        for (const request of requests) {
          if (request.PutRequest) this.write(clean(request.PutRequest.Item as Item));
          else if (request.DeleteRequest) {
            const key = keyOf(request.DeleteRequest.Key as Item);
            this.del.run(key[PK] as string, key[SK] as string);
          }
        }
      })();
      return { UnprocessedItems: {} };
    }
    if (command.kind === 'BatchGet') {
      const input = command.input as DocumentCommands['BatchGet'][0];
      const Responses: Record<string, Item[]> = {};
      for (const [table, request] of Object.entries(input.RequestItems ?? {})) {
        const keep = request.ProjectionExpression
          ? parseProjection(request.ProjectionExpression, request.ExpressionAttributeNames)
          : undefined;
        Responses[table] = (request.Keys ?? [])
          .map((key) => this.read(key as Item))
          .filter((item): item is Item => item !== undefined)
          .map((item) => (keep ? project(item, keep) : item));
      }
      return { Responses, UnprocessedKeys: {} };
    }
    throw new ExpressionError(`the embedded ledger does not implement ${command.kind}`);
  }

  private read(key: Item): Item | undefined {
    const row = this.get.get(String(key[PK]), String(key[SK]));
    return row ? (JSON.parse(row.item) as Item) : undefined;
  }

  private check(
    key: Item,
    request: { ReturnValuesOnConditionCheckFailure?: string | undefined },
    condition: string | undefined,
    names: Names,
    values: Values,
  ): Item | undefined {
    const current = this.read(key);
    if (condition && !evaluate(parseCondition(condition, names), current, values)) {
      const returnOld = request.ReturnValuesOnConditionCheckFailure === 'ALL_OLD';
      throw new ConditionalCheckFailedException(returnOld ? current : undefined);
    }
    return current;
  }

  private write(item: Item): void {
    const key = keyOf(item);
    const json = JSON.stringify(item);
    if (Buffer.byteLength(json) > ITEM_BYTES)
      throw new ExpressionError('Item size has exceeded the maximum allowed size');
    const indexKeys = INDEXES.flatMap((index) => {
      const p = item[index.partitionKey];
      const s = item[index.sortKey];
      if (typeof p !== 'string' || typeof s !== 'string') return [null, null];
      checkKeySize(index.partitionKey, p, PARTITION_KEY_BYTES);
      checkKeySize(index.sortKey, s, SORT_KEY_BYTES);
      return [p, s];
    });
    const expires = item[ttlAttribute];
    this.put.run(
      key[PK],
      key[SK],
      ...indexKeys,
      typeof expires === 'number' ? Math.floor(expires) : null,
      json,
    );
  }

  private query(input: DocumentCommands['Query'][0]): unknown {
    const names = input.ExpressionAttributeNames;
    const values = input.ExpressionAttributeValues;
    const index = input.IndexName ? INDEXES.find((i) => i.name === input.IndexName) : undefined;
    if (input.IndexName && !index) throw new ExpressionError(`no index ${input.IndexName}`);
    const [hash, range] = index ? [index.partitionKey, index.sortKey] : [PK, SK];
    const condition = parseCondition(input.KeyConditionExpression ?? '', names);
    const hashValue = partitionValue(condition, hash, values);
    const statement = index
      ? (this.byIndex[index.name] as BetterSqlite3.Statement<[string], Row>)
      : this.byPartition;
    let items = statement
      .all(hashValue)
      .map((row) => JSON.parse(row.item) as Item)
      .filter((item) => typeof item[range] === 'string' && evaluate(condition, item, values));
    const order = (a: Item, b: Item) =>
      compareUtf8(a[range] as string, b[range] as string) ||
      compareUtf8(a[PK] as string, b[PK] as string) ||
      compareUtf8(a[SK] as string, b[SK] as string);
    items.sort(input.ScanIndexForward === false ? (a, b) => order(b, a) : order);
    const start = input.ExclusiveStartKey as Item | undefined;
    if (start) {
      const after = items.findIndex((item) => item[PK] === start[PK] && item[SK] === start[SK]);
      items = after >= 0 ? items.slice(after + 1) : items.filter((item) => order(item, start) > 0);
    }
    return this.page(items, input.Limit, input.FilterExpression, names, values, index ? [hash, range] : []);
  }

  private scan(input: DocumentCommands['Scan'][0]): unknown {
    let items = (this.db.prepare('SELECT item FROM items ORDER BY pk, sk').all() as Row[]).map(
      (row) => JSON.parse(row.item) as Item,
    );
    const start = input.ExclusiveStartKey as Item | undefined;
    if (start) {
      const after = items.findIndex((item) => item[PK] === start[PK] && item[SK] === start[SK]);
      items = items.slice(after + 1);
    }
    const out = this.page(
      items,
      input.Limit,
      input.FilterExpression,
      input.ExpressionAttributeNames,
      input.ExpressionAttributeValues,
      [],
    ) as { Items: Item[] };
    if (input.ProjectionExpression) {
      const keep = parseProjection(input.ProjectionExpression, input.ExpressionAttributeNames);
      out.Items = out.Items.map((item) => project(item, keep));
    }
    return out;
  }

  /** Limit counts the items read, before the filter, as DynamoDB's does. */
  private page(
    items: Item[],
    limit: number | undefined,
    filter: string | undefined,
    names: Names,
    values: Values,
    indexKeys: string[],
  ): unknown {
    const read = limit !== undefined && limit < items.length ? items.slice(0, limit) : items;
    const last = read.length < items.length ? read[read.length - 1] : undefined;
    const kept = filter ? read.filter((item) => evaluate(parseCondition(filter, names), item, values)) : read;
    return {
      Items: kept,
      Count: kept.length,
      ScannedCount: read.length,
      ...(last ? { LastEvaluatedKey: project(last, [PK, SK, ...indexKeys]) } : {}),
    };
  }
}

function keyOf(item: Item): Item {
  const pk = item[PK];
  const sk = item[SK];
  if (typeof pk !== 'string' || typeof sk !== 'string' || pk === '' || sk === '')
    throw new ExpressionError('the key attributes pk and sk must be non-empty strings');
  checkKeySize(PK, pk, PARTITION_KEY_BYTES);
  checkKeySize(SK, sk, SORT_KEY_BYTES);
  return { [PK]: pk, [SK]: sk };
}

function checkKeySize(name: string, value: string, limit: number): void {
  if (Buffer.byteLength(value) > limit)
    throw new ExpressionError(`the key attribute ${name} is longer than DynamoDB's ${limit} bytes`);
}

/** The hash key's value from `hash = :v [AND ...]`, as every Query names it. */
function partitionValue(condition: ReturnType<typeof parseCondition>, hash: string, values: Values): string {
  const find = (c: typeof condition): string | undefined => {
    if (c.kind === 'and') return find(c.left) ?? find(c.right);
    if (
      c.kind === 'compare' &&
      c.op === '=' &&
      c.left.kind === 'path' &&
      c.left.path.length === 1 &&
      'name' in (c.left.path[0] as object) &&
      (c.left.path[0] as { name: string }).name === hash &&
      c.right.kind === 'value'
    ) {
      const value = values?.[c.right.name];
      return typeof value === 'string' ? value : undefined;
    }
    return undefined;
  };
  const value = find(condition);
  if (value === undefined) throw new ExpressionError(`the key condition must give ${hash} = :value`);
  return value;
}

function project(item: Item, keep: readonly string[]): Item {
  const out: Item = {};
  for (const name of keep) if (item[name] !== undefined) out[name] = item[name];
  return out;
}

/** What the DocumentClient stores with removeUndefinedValues: no undefined anywhere. */
function clean(item: Item): Item {
  return JSON.parse(JSON.stringify(item)) as Item;
}
