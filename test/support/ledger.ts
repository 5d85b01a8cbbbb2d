import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';

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
