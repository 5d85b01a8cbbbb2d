import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { ledgerTable } from './ledger-table.ts';
import { StackPart } from './stable-ids.ts';

/** The ledger, and the run store (run artifacts and reports) with its access log bucket. */
export class Storage extends StackPart {
  readonly ledger: Table;
  readonly reportsBucket: Bucket;
  /** The run store's URL, as the functions and the sandbox read it. */
  readonly runStore: string;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.ledger = ledgerTable(this);
    const accessLogs = new Bucket(this, 'AccessLogs', {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.reportsBucket = new Bucket(this, 'Reports', {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'reports/',
      lifecycleRules: [
        { id: 'run-artifacts', prefix: 'runs/', expiration: Duration.days(30) },
        { id: 'old-versions', noncurrentVersionExpiration: Duration.days(30) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.runStore = `s3://${this.reportsBucket.bucketName}`;
  }
}
