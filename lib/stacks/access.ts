import { Aws } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { type IGrantable, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { IConstruct, Node } from 'constructs';
import { LEDGER_TABLE } from '../adapters/ledger-schema.ts';
import { PROTECTION_PERMISSIONS } from '../adapters/s3-immutability.ts';
import type { S3Location } from './inputs.ts';
import { acknowledgeWildcardResources } from './nag.ts';

const OBJECT_WILDCARD_REASON =
  'Object-level access is granted below a named bucket and key prefix; S3 object ARNs cannot be named one by one because backup keys are discovered at run time.';

export function bucketArn(bucket: string): string {
  return `arn:${Aws.PARTITION}:s3:::${bucket}`;
}

export function objectsArn(location: S3Location): string {
  return location.prefix
    ? `${bucketArn(location.bucket)}/${location.prefix}/*`
    : `${bucketArn(location.bucket)}/*`;
}

/** One ListBucket statement a bucket, limited to the locations' prefixes unless one is the whole bucket. */
function listStatements(locations: S3Location[]): PolicyStatement[] {
  return [...byBucket(locations)].map(([bucket, here]) => {
    const prefixes = here.map((l) => l.prefix);
    const whole = prefixes.includes('');
    return new PolicyStatement({
      actions: ['s3:ListBucket'],
      resources: [bucketArn(bucket)],
      ...(whole
        ? {}
        : { conditions: { StringLike: { 's3:prefix': prefixes.flatMap((p) => [p, `${p}/*`]) } } }),
    });
  });
}

function byBucket(locations: S3Location[]): Map<string, S3Location[]> {
  const map = new Map<string, S3Location[]>();
  for (const l of locations) map.set(l.bucket, [...(map.get(l.bucket) ?? []), l]);
  return map;
}

/** A principal and the construct its policy lives under (where nag acknowledgements go). */
export interface Grantee extends IGrantable {
  readonly node: Node;
}

function add(grantee: Grantee, statements: PolicyStatement[]): void {
  for (const s of statements) grantee.grantPrincipal.addToPrincipalPolicy(s);
}

/** Read-only on the sources: list under each prefix, read objects below it. No write action at all. */
export function grantSourceRead(grantee: Grantee, sources: S3Location[]): void {
  const statements = listStatements(sources);
  const objects = sources.map(objectsArn);
  statements.push(
    new PolicyStatement({ actions: ['s3:GetObject', 's3:GetObjectAttributes'], resources: objects }),
  );
  add(grantee, statements);
  acknowledgeWildcardResources(grantee as unknown as IConstruct, objects, OBJECT_WILDCARD_REASON);
}

/** Discover asks each source bucket's region: a bucket outside the sandbox's region cannot be restored there. */
export function grantSourceRegion(grantee: Grantee, sources: S3Location[]): void {
  add(grantee, [
    new PolicyStatement({
      actions: ['s3:GetBucketLocation'],
      resources: [...byBucket(sources).keys()].map(bucketArn),
    }),
  ]);
}

/** The bucket-level reads of the immutability check (issue 15): versioning, Object Lock, lifecycle. */
export const PROTECTION_BUCKET_ACTIONS = [
  PROTECTION_PERMISSIONS.versioning,
  PROTECTION_PERMISSIONS.objectLock,
  PROTECTION_PERMISSIONS.lifecycle,
];
/** The object-level reads of the immutability check: retention and legal hold. */
export const PROTECTION_OBJECT_ACTIONS = [PROTECTION_PERMISSIONS.retention, PROTECTION_PERMISSIONS.legalHold];

/**
 * What the immutability check reads of the sources, to the function that runs it: the source
 * buckets' protection settings and the retention and legal hold of objects below the prefixes.
 * Only Get* actions: nothing that could change a retention, a hold or a rule.
 */
export function grantSourceProtectionRead(grantee: Grantee, sources: S3Location[]): void {
  if (sources.length === 0) return;
  const objects = sources.map(objectsArn);
  add(grantee, [
    new PolicyStatement({
      actions: [...PROTECTION_BUCKET_ACTIONS],
      resources: [...new Set(sources.map((s) => bucketArn(s.bucket)))],
    }),
    new PolicyStatement({ actions: [...PROTECTION_OBJECT_ACTIONS], resources: objects }),
  ]);
  acknowledgeWildcardResources(grantee as unknown as IConstruct, objects, OBJECT_WILDCARD_REASON);
}

/** Copies to the redundancy targets: write new objects and read them back to verify. No delete. */
export function grantRedundancyWrite(grantee: Grantee, targets: S3Location[]): void {
  if (targets.length === 0) return;
  const statements = listStatements(targets);
  const objects = targets.map(objectsArn);
  statements.push(
    new PolicyStatement({
      actions: ['s3:PutObject', 's3:GetObject', 's3:GetObjectAttributes'],
      resources: objects,
    }),
  );
  add(grantee, statements);
  acknowledgeWildcardResources(grantee as unknown as IConstruct, objects, OBJECT_WILDCARD_REASON);
}

export const RUN_STORE_PREFIXES = ['runs', 'reports'] as const;

/** The run store: run artifacts under runs/, reports under reports/. */
export function grantRunStore(grantee: Grantee, bucket: IBucket, mode: 'read' | 'readwrite'): void {
  const objects = RUN_STORE_PREFIXES.map((p) => bucket.arnForObjects(`${p}/*`));
  const actions = mode === 'read' ? ['s3:GetObject'] : ['s3:GetObject', 's3:PutObject'];
  add(grantee, [
    new PolicyStatement({
      actions: ['s3:ListBucket'],
      resources: [bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': RUN_STORE_PREFIXES.flatMap((p) => [p, `${p}/*`]) } },
    }),
    new PolicyStatement({ actions, resources: objects }),
  ]);
  acknowledgeWildcardResources(
    grantee as unknown as IConstruct,
    objects,
    "Run artifacts and reports are keyed by run id under runs/ and reports/ of the pipeline's own bucket.",
  );
}

export const LEDGER_INDEXES = Object.values(LEDGER_TABLE.indexes).map((index) => index.name);
const LEDGER_READ = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:DescribeTable'];
const LEDGER_WRITE = [
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:ConditionCheckItem',
];

/** Ledger items and its two indexes, named; no Scan, no DeleteItem (items expire by TTL). */
export function grantLedger(grantee: Grantee, table: ITable, mode: 'read' | 'readwrite'): void {
  const indexes = LEDGER_INDEXES.map((i) => `${table.tableArn}/index/${i}`);
  add(grantee, [
    new PolicyStatement({
      actions: mode === 'read' ? LEDGER_READ : [...LEDGER_READ, ...LEDGER_WRITE],
      resources: [table.tableArn],
    }),
    new PolicyStatement({ actions: ['dynamodb:Query'], resources: indexes }),
  ]);
}

/**
 * SSE-KMS buckets: S3 decrypts (and, for writes, encrypts) with the caller's permission on the key,
 * so a role that reads a source encrypted with a customer-managed key needs kms:Decrypt on it. The
 * kms:ViaService condition limits the grant to requests S3 makes on the role's behalf.
 */
export function grantKeyUse(grantee: Grantee, keyArns: string[], mode: 'decrypt' | 'encrypt-decrypt'): void {
  if (keyArns.length === 0) return;
  // S3 calls KMS from the bucket's own region, which is the key's: a key in another region is used via that region's S3.
  const viaServices = [
    ...new Set(
      keyArns.map((arn) => `s3.${/^arn:[^:]+:kms:([a-z0-9-]+):/.exec(arn)?.[1] ?? Aws.REGION}.amazonaws.com`),
    ),
  ];
  add(grantee, [
    new PolicyStatement({
      actions: mode === 'decrypt' ? ['kms:Decrypt'] : ['kms:Decrypt', 'kms:GenerateDataKey'],
      resources: keyArns,
      conditions: {
        StringEquals: { 'kms:ViaService': viaServices.length === 1 ? viaServices[0] : viaServices },
      },
    }),
  ]);
}
