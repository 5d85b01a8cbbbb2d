import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

/**
 * The ledger table's fixed shape, the one place its key and index names are written: the CDK stack,
 * the DynamoDB ledger and the embedded (SQLite) ledger all read them here. The item layout that
 * lives on top of them is described in docs/ledger.md.
 */
export const LEDGER_TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  indexes: {
    gsi1: { name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
    gsi2: { name: 'gsi2', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
  },
  /** Epoch seconds; only items that may expire (runs and their results) carry it. */
  ttlAttribute: 'expiresAt',
  billingMode: 'PAY_PER_REQUEST',
  /** Every key attribute, of the table and of its indexes, is a string. */
  keyType: 'S',
} as const;

/** CreateTable input for local servers (dynalite) and tests; the deployed table comes from the stack. */
export function createTableInput(tableName: string): CreateTableCommandInput {
  const { gsi1, gsi2 } = LEDGER_TABLE.indexes;
  return {
    TableName: tableName,
    BillingMode: LEDGER_TABLE.billingMode,
    AttributeDefinitions: [
      { AttributeName: LEDGER_TABLE.partitionKey, AttributeType: LEDGER_TABLE.keyType },
      { AttributeName: LEDGER_TABLE.sortKey, AttributeType: LEDGER_TABLE.keyType },
      { AttributeName: gsi1.partitionKey, AttributeType: LEDGER_TABLE.keyType },
      { AttributeName: gsi1.sortKey, AttributeType: LEDGER_TABLE.keyType },
      { AttributeName: gsi2.partitionKey, AttributeType: LEDGER_TABLE.keyType },
      { AttributeName: gsi2.sortKey, AttributeType: LEDGER_TABLE.keyType },
    ],
    KeySchema: [
      { AttributeName: LEDGER_TABLE.partitionKey, KeyType: 'HASH' },
      { AttributeName: LEDGER_TABLE.sortKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [gsi1, gsi2].map((index) => ({
      IndexName: index.name,
      KeySchema: [
        { AttributeName: index.partitionKey, KeyType: 'HASH' as const },
        { AttributeName: index.sortKey, KeyType: 'RANGE' as const },
      ],
      Projection: { ProjectionType: 'ALL' as const },
    })),
  };
}
