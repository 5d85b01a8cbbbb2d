import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import { LEDGER_TABLE } from '../adapters/ledger-schema.ts';

/**
 * The ledger's DynamoDB table, from the one schema the DynamoDB ledger and the embedded ledger
 * also read (lib/adapters/ledger-schema.ts), so the three cannot drift.
 */
export function ledgerTable(scope: Construct): Table {
  const keyType = { S: AttributeType.STRING }[LEDGER_TABLE.keyType];
  const table = new Table(scope, 'Ledger', {
    partitionKey: { name: LEDGER_TABLE.partitionKey, type: keyType },
    sortKey: { name: LEDGER_TABLE.sortKey, type: keyType },
    billingMode: BillingMode[LEDGER_TABLE.billingMode],
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    timeToLiveAttribute: LEDGER_TABLE.ttlAttribute,
    encryption: TableEncryption.AWS_MANAGED,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  for (const index of Object.values(LEDGER_TABLE.indexes)) {
    table.addGlobalSecondaryIndex({
      indexName: index.name,
      partitionKey: { name: index.partitionKey, type: keyType },
      sortKey: { name: index.sortKey, type: keyType },
      projectionType: ProjectionType.ALL,
    });
  }
  return table;
}
