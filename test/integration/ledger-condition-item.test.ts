import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  type DocumentCommand,
  type DocumentCommandKind,
  type DocumentSender,
  PutCommand,
  UpdateCommand,
} from '../../lib/adapters/document-commands.ts';
import { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import { SqliteDocuments } from '../../lib/adapters/sqlite-documents.ts';

const TABLE = 'ledger';

async function failure(write: Promise<unknown>): Promise<{ name: string; Item?: unknown }> {
  try {
    await write;
  } catch (error) {
    return error as { name: string; Item?: unknown };
  }
  throw new Error('the conditional write was made');
}

/** The SQLite engine, with the kind of every command sent through it written down. */
function countingSqlite(): { documents: DocumentSender; kinds: DocumentCommandKind[] } {
  const engine = new SqliteDocuments(new Database(':memory:'));
  const kinds: DocumentCommandKind[] = [];
  return {
    kinds,
    documents: {
      send: (command: DocumentCommand<DocumentCommandKind>) => {
        kinds.push(command.kind);
        return engine.send(command);
      },
    } as DocumentSender,
  };
}

describe('issue 11: a failed condition returns the item it found (ReturnValuesOnConditionCheckFailure)', () => {
  it('the SQLite engine returns the old item with ALL_OLD, and nothing without it', async () => {
    const engine = new SqliteDocuments(new Database(':memory:'));
    const item = { pk: 'a', sk: 'b', value: 1 };
    await engine.send(PutCommand({ TableName: TABLE, Item: item }));
    const put = {
      TableName: TABLE,
      Item: { ...item, value: 2 },
      ConditionExpression: 'attribute_not_exists(pk)',
    };
    const withOld = await failure(
      engine.send(PutCommand({ ...put, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' })),
    );
    expect(withOld.name).toBe('ConditionalCheckFailedException');
    expect(withOld.Item).toEqual(item);
    expect((await failure(engine.send(PutCommand(put)))).Item).toBeUndefined();
    const update = UpdateCommand({
      TableName: TABLE,
      Key: { pk: 'a', sk: 'b' },
      UpdateExpression: 'SET #v = :v',
      ConditionExpression: '#v > :v',
      ExpressionAttributeNames: { '#v': 'value' },
      ExpressionAttributeValues: { ':v': 5 },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
    expect((await failure(engine.send(update))).Item).toEqual(item);
  });

  it('starting a run twice and recording a checksum seen first elsewhere answer from the failed write, without a second read', async () => {
    const { documents, kinds } = countingSqlite();
    const ledger = new DynamoDbLedger({ tableName: TABLE, documents, location: 'memory' });
    const run = {
      runId: 'run-1',
      trigger: 'cli' as const,
      sources: ['/b'],
      startedAt: '2026-01-01T00:00:00.000Z',
    };
    await ledger.startRun(run);
    const checksum = { path: 'x', sha256: 'a'.repeat(64), size: 1 };
    await ledger.recordFirstSeen('backup', [checksum]);
    kinds.length = 0;
    const again = await ledger.startRun({ ...run, startedAt: '2026-02-01T00:00:00.000Z' });
    expect(again.startedAt).toBe(run.startedAt);
    expect(kinds).toEqual(['Put']);
    kinds.length = 0;
    // A reader that saw no checksum yet (it read before the first writer wrote) is told the first sighting.
    const sneaky: DocumentSender = {
      send: (command: DocumentCommand<DocumentCommandKind>) =>
        command.kind === 'Query' ? Promise.resolve({ Items: [], $metadata: {} }) : documents.send(command),
    } as DocumentSender;
    const late = new DynamoDbLedger({ tableName: TABLE, documents: sneaky, location: 'memory' });
    const previous = await late.recordFirstSeen('backup', [{ ...checksum, sha256: 'b'.repeat(64) }]);
    expect(previous).toEqual([expect.objectContaining({ path: 'x', sha256: 'a'.repeat(64) })]);
    expect(kinds).toEqual(['Put']);
  });
});
