import { randomUUID } from 'node:crypto';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { inject } from 'vitest';
import { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import type { StageResultRecord } from '../../lib/core/ledger.ts';
import type { Backup } from '../../lib/core/model.ts';

export const credentials = { accessKeyId: 'x', secretAccessKey: 'x' };

/** A client that writes down the name of every command it sends. */
export function countingClient(endpoint = inject('dynamoEndpoint')): {
  client: DynamoDBClient;
  commands: string[];
} {
  const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials });
  const commands: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      commands.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize', name: 'countCommands' },
  );
  return { client, commands };
}

export async function newLedger(
  options: { tableName?: string; now?: () => Date; retentionDays?: number } = {},
) {
  const tableName = options.tableName ?? `ledger-${randomUUID()}`;
  const { client, commands } = countingClient();
  const ledger = new DynamoDbLedger({
    tableName,
    client,
    retentionDays: options.retentionDays ?? 30,
    ...(options.now ? { now: options.now } : {}),
  });
  await ledger.ensureTable();
  commands.length = 0;
  return { ledger, client, commands, tableName };
}

/** Every item of the table, sorted by key: a test's view of everything written. */
export async function snapshot(client: DynamoDBClient, tableName: string) {
  const items: Array<Record<string, unknown>> = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const out = await client.send(
      new ScanCommand({
        TableName: tableName,
        ...(startKey ? { ExclusiveStartKey: startKey as never } : {}),
      }),
    );
    items.push(...((out.Items ?? []) as Array<Record<string, unknown>>));
    startKey = out.LastEvaluatedKey;
  } while (startKey);
  const key = (i: Record<string, unknown>) => `${JSON.stringify(i.pk)}|${JSON.stringify(i.sk)}`;
  return items.sort((a, b) => (key(a) < key(b) ? -1 : 1));
}

export function backup(
  name: string,
  series: string,
  createdAt: string,
  bytes: number,
  source = '/backups',
): Backup {
  return {
    id: `${source}/${name}`,
    source,
    series,
    kind: 'archive',
    key: name,
    name,
    createdAt: new Date(createdAt),
    createdFrom: 'name',
    objects: 1,
    bytes,
    members: [{ key: name, path: name, size: bytes, lastModified: new Date(createdAt) }],
    manifestKeys: [],
  };
}

export function result(
  runId: string,
  b: Backup,
  stage: StageResultRecord['stage'],
  status: StageResultRecord['status'],
  at: string,
  extra: Partial<StageResultRecord> = {},
): StageResultRecord {
  return {
    runId,
    backupId: b.id,
    series: b.series,
    stage,
    status,
    durationMs: 100,
    findings: [],
    at,
    ...(stage === 'integrity' ? { bytes: b.bytes, files: 3, score: status === 'FAIL' ? 0.5 : 1 } : {}),
    ...extra,
  };
}
