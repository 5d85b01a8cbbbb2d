import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import { LEDGER_INDEXES } from './access.ts';

/** The ledger's DynamoDB table: the key scheme the DynamoDB ledger adapter writes. */
export function ledgerTable(scope: Construct): Table {
  const table = new Table(scope, 'Ledger', {
    partitionKey: { name: 'pk', type: AttributeType.STRING },
    sortKey: { name: 'sk', type: AttributeType.STRING },
    billingMode: BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    timeToLiveAttribute: 'expiresAt',
    encryption: TableEncryption.AWS_MANAGED,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  for (const index of LEDGER_INDEXES) {
    table.addGlobalSecondaryIndex({
      indexName: index,
      partitionKey: { name: `${index}pk`, type: AttributeType.STRING },
      sortKey: { name: `${index}sk`, type: AttributeType.STRING },
      projectionType: ProjectionType.ALL,
    });
  }
  return table;
}
