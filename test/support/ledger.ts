import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import type { Ledger } from '../../lib/core/ledger.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';

/** A fresh table on the test DynamoDB server (dynalite on 127.0.0.1). */
export async function freshLedger(now?: () => Date): Promise<DynamoDbLedger> {
  const ledger = new DynamoDbLedger({
    tableName: `bv-test-${randomBytes(4).toString('hex')}`,
    clientConfig: {
      endpoint: inject('dynamoEndpoint'),
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    },
    ...(now ? { now } : {}),
  });
  await ledger.ensureTable();
  return ledger;
}

/** A stage context over folders: the run store in `runs`, sources opened as folders, the clock `now`. */
export function folderStageContext(
  ledger: Ledger,
  runs: string,
  now: () => Date = () => new Date(),
): StageContext {
  return { ledger, runStore: new FolderStore(runs), openSource: (url) => new FolderStore(url), now };
}
