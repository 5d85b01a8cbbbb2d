import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetCommand, PutCommand } from '../../lib/adapters/document-commands.ts';
import { SqliteDocuments } from '../../lib/adapters/sqlite-documents.ts';
import { makeTempDir } from '../support/archives.ts';

/**
 * Issue 13: the embedded ledger commits the writes of one event-loop turn together. What a
 * command answered is on disk once the turn ends (another connection sees it), a failed
 * condition costs none of the turn's other writes, and close() commits what is pending.
 */
let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('bv-group-commit-');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const put = (pk: string, condition?: string) =>
  PutCommand({
    TableName: 'ledger',
    Item: { pk, sk: 'x', value: pk },
    ...(condition ? { ConditionExpression: condition } : {}),
  });

/** The keys another connection to the file sees committed. */
function committed(file: string): string[] {
  const reader = new Database(file, { readonly: true });
  try {
    return (reader.prepare('SELECT pk FROM items ORDER BY pk').all() as Array<{ pk: string }>).map(
      (r) => r.pk,
    );
  } finally {
    reader.close();
  }
}

const turnEnds = () => new Promise((resolve) => setImmediate(resolve));

describe('issue 13: group commit in the embedded ledger', () => {
  it('commits a turn’s writes when the turn ends, a failed condition keeping the others', async () => {
    const file = join(dir, 'turns.db');
    const documents = new SqliteDocuments(new Database(file));
    try {
      await documents.send(put('a'));
      await expect(documents.send(put('a', 'attribute_not_exists(pk)'))).rejects.toMatchObject({
        name: 'ConditionalCheckFailedException',
      });
      await documents.send(put('b'));
      // Read back within the turn: the writes are the connection's own.
      expect(
        (await documents.send(GetCommand({ TableName: 'ledger', Key: { pk: 'b', sk: 'x' } }))).Item,
      ).toEqual({ pk: 'b', sk: 'x', value: 'b' });
      // One transaction for the turn: nothing of it is committed before the turn ends.
      expect(committed(file)).toEqual([]);
      await turnEnds();
      expect(committed(file)).toEqual(['a', 'b']);
      await documents.send(put('c'));
      await turnEnds();
      expect(committed(file)).toEqual(['a', 'b', 'c']);
    } finally {
      documents.close();
    }
  });

  it('close() commits the writes of the turn it ends', async () => {
    const file = join(dir, 'close.db');
    const documents = new SqliteDocuments(new Database(file));
    await documents.send(put('last'));
    documents.close();
    expect(committed(file)).toEqual(['last']);
  });
});
