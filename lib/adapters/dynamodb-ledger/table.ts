import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LedgerError } from '../../core/errors.ts';
import { createTableInput, LEDGER_TABLE } from '../ledger-schema.ts';
import { errorName, sleep, type TableIo } from './io.ts';

/** Creates the table if missing and enables TTL where the server supports it (local and embedded use). */
export async function ensureTable(io: TableIo, client: () => Promise<DynamoDBClient>): Promise<void> {
  await io.guard('create the ledger table', async () => {
    let exists = true;
    try {
      await checkTableShape(io, await client());
    } catch (error) {
      if (errorName(error) !== 'ResourceNotFoundException') throw error;
      exists = false;
    }
    if (!exists) {
      try {
        const { CreateTableCommand } = await import('@aws-sdk/client-dynamodb');
        await (await client()).send(new CreateTableCommand(createTableInput(io.tableName)));
      } catch (error) {
        if (errorName(error) !== 'ResourceInUseException') throw error;
      }
      await waitUntilActive(io, await client());
    }
    await enableTtl(io, await client());
  });
}

async function checkTableShape(io: TableIo, client: DynamoDBClient): Promise<void> {
  const { DescribeTableCommand } = await import('@aws-sdk/client-dynamodb');
  const { Table } = await client.send(new DescribeTableCommand({ TableName: io.tableName }));
  const keys = (Table?.KeySchema ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).join(',');
  const indexes = new Set((Table?.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName));
  const want = `${LEDGER_TABLE.partitionKey}:HASH,${LEDGER_TABLE.sortKey}:RANGE`;
  const missing = Object.values(LEDGER_TABLE.indexes)
    .map((i) => i.name)
    .filter((name) => !indexes.has(name));
  if (keys !== want || missing.length > 0) {
    throw new LedgerError(
      `table "${io.tableName}" is not a backup-validator ledger (keys ${keys || 'none'}, ` +
        `missing indexes: ${missing.join(', ') || 'none'}); expected ${want} with indexes gsi1 and gsi2. ` +
        'Use another table name or the table the stack creates.',
      io.location,
    );
  }
}

async function waitUntilActive(io: TableIo, client: DynamoDBClient): Promise<void> {
  const { DescribeTableCommand } = await import('@aws-sdk/client-dynamodb');
  for (let attempt = 0; attempt < 120; attempt++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: io.tableName }));
    const indexesActive = (Table?.GlobalSecondaryIndexes ?? []).every((i) => i.IndexStatus === 'ACTIVE');
    if (Table?.TableStatus === 'ACTIVE' && indexesActive) return;
    await sleep(250);
  }
  throw new LedgerError(
    `table "${io.tableName}" did not become ACTIVE within 30 s at ${io.endpointLabel}`,
    io.location,
  );
}

async function enableTtl(io: TableIo, client: DynamoDBClient): Promise<void> {
  try {
    const { DescribeTimeToLiveCommand, UpdateTimeToLiveCommand } = await import('@aws-sdk/client-dynamodb');
    const ttl = await client.send(new DescribeTimeToLiveCommand({ TableName: io.tableName }));
    const state = ttl.TimeToLiveDescription?.TimeToLiveStatus;
    if (state === 'ENABLED' || state === 'ENABLING') return;
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: io.tableName,
        TimeToLiveSpecification: { AttributeName: LEDGER_TABLE.ttlAttribute, Enabled: true },
      }),
    );
  } catch (error) {
    // dynalite has no UpdateTimeToLive: the attribute is still written, and a real table expires it.
    if (errorName(error) === 'UnknownOperationException') return;
    throw error;
  }
}
