import {
  GetBucketLifecycleConfigurationCommand,
  GetBucketVersioningCommand,
  GetObjectLegalHoldCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  type LifecycleRule as S3LifecycleRule,
} from '@aws-sdk/client-s3';
import { StoreError } from '../core/errors.ts';
import type {
  BucketProtection,
  LifecycleRule,
  LockMode,
  ObjectProtection,
  ProtectionProbe,
} from '../core/ports.ts';
import { nameOf, statusOf } from './s3-store/errors.ts';
import { S3Store } from './s3-store.ts';
import { openStore, type StoreOptions } from './stores.ts';

/** The IAM action behind each read call (docs/contract.md, lib/stacks/access.ts). */
export const PROTECTION_PERMISSIONS = {
  versioning: 's3:GetBucketVersioning',
  objectLock: 's3:GetBucketObjectLockConfiguration',
  lifecycle: 's3:GetLifecycleConfiguration',
  retention: 's3:GetObjectRetention',
  legalHold: 's3:GetObjectLegalHold',
} as const;

/** What S3 answers when there is simply nothing configured: a fact, not a failure. */
const NOTHING_CONFIGURED = new Set([
  'ObjectLockConfigurationNotFoundError',
  'NoSuchLifecycleConfiguration',
  'NoSuchObjectLockConfiguration',
]);

function lockMode(mode: string | undefined): LockMode | undefined {
  return mode === 'GOVERNANCE' || mode === 'COMPLIANCE' ? mode : undefined;
}

function toRule(rule: S3LifecycleRule, index: number): LifecycleRule | undefined {
  if (rule.Status !== 'Enabled') return undefined;
  const filter = rule.Filter;
  const and = filter?.And;
  const tags = [...(filter?.Tag ? [filter.Tag] : []), ...(and?.Tags ?? [])].map(
    (t) => `${t.Key ?? ''}=${t.Value ?? ''}`,
  );
  const out: LifecycleRule = {
    id: rule.ID ?? `rule ${index + 1}`,
    // `Prefix` outside the filter is the legacy (V1) form, still returned for old rules.
    prefix: filter?.Prefix ?? and?.Prefix ?? rule.Prefix ?? '',
    tags,
  };
  const greater = filter?.ObjectSizeGreaterThan ?? and?.ObjectSizeGreaterThan;
  const less = filter?.ObjectSizeLessThan ?? and?.ObjectSizeLessThan;
  if (greater !== undefined) out.objectSizeGreaterThan = Number(greater);
  if (less !== undefined) out.objectSizeLessThan = Number(less);
  if (rule.Expiration?.Days !== undefined) out.expirationDays = rule.Expiration.Days;
  if (rule.Expiration?.Date !== undefined) out.expirationDate = new Date(rule.Expiration.Date).toISOString();
  if (rule.NoncurrentVersionExpiration?.NoncurrentDays !== undefined)
    out.noncurrentDays = rule.NoncurrentVersionExpiration.NoncurrentDays;
  return out;
}

/**
 * Reads the deletion protection of an S3 source through the store's client: versioning, Object
 * Lock and lifecycle of its bucket, retention and legal hold of its objects. Only Get* calls.
 */
export class S3ProtectionProbe implements ProtectionProbe {
  readonly prefix: string;

  constructor(private readonly store: S3Store) {
    this.prefix = store.prefix;
  }

  async bucket(): Promise<BucketProtection> {
    const Bucket = this.store.bucket;
    const client = this.store.client;
    const versioning = await this.ask('versioning', undefined, () =>
      client.send(new GetBucketVersioningCommand({ Bucket })),
    );
    const lock = await this.ask('objectLock', undefined, () =>
      client.send(new GetObjectLockConfigurationCommand({ Bucket })),
    );
    const lifecycle = await this.ask('lifecycle', undefined, () =>
      client.send(new GetBucketLifecycleConfigurationCommand({ Bucket })),
    );
    const status = versioning?.Status;
    const config = lock?.ObjectLockConfiguration;
    const out: BucketProtection = {
      bucket: Bucket,
      versioning: status === 'Enabled' || status === 'Suspended' ? status : 'Off',
      objectLock: config?.ObjectLockEnabled === 'Enabled',
      lifecycle: (lifecycle?.Rules ?? []).map(toRule).filter((r): r is LifecycleRule => r !== undefined),
    };
    const retention = config?.Rule?.DefaultRetention;
    const mode = lockMode(retention?.Mode);
    if (mode) out.defaultRetention = { mode, days: retention?.Days ?? (retention?.Years ?? 0) * 365 };
    return out;
  }

  async object(key: string): Promise<ObjectProtection> {
    const Bucket = this.store.bucket;
    const Key = `${this.prefix}${key}`;
    const client = this.store.client;
    const retention = await this.ask('retention', key, () =>
      client.send(new GetObjectRetentionCommand({ Bucket, Key })),
    );
    const hold = await this.ask('legalHold', key, () =>
      client.send(new GetObjectLegalHoldCommand({ Bucket, Key })),
    );
    const out: ObjectProtection = { legalHold: hold?.LegalHold?.Status === 'ON' };
    const mode = lockMode(retention?.Retention?.Mode);
    const until = retention?.Retention?.RetainUntilDate;
    if (mode && until) out.retention = { mode, retainUntil: new Date(until).toISOString() };
    return out;
  }

  /** One read call; "nothing configured" answers undefined, anything else is a StoreError naming the permission. */
  private async ask<T>(
    what: keyof typeof PROTECTION_PERMISSIONS,
    key: string | undefined,
    call: () => Promise<T>,
  ): Promise<T | undefined> {
    try {
      return await call();
    } catch (error) {
      if (NOTHING_CONFIGURED.has(nameOf(error))) return undefined;
      const location = this.store.locationOf(key);
      if (nameOf(error) === 'AccessDenied' || statusOf(error) === 403) {
        throw new StoreError(
          `access denied reading the ${what} of ${location}: grant ${PROTECTION_PERMISSIONS[what]} to the identity in use`,
          'access-denied',
          location,
          { cause: error },
        );
      }
      throw this.store.translate(error, 'head', key);
    }
  }
}

/** The protection probe of an S3 source; undefined for a folder (not applicable). */
export function openProtection(url: string, options: StoreOptions = {}): ProtectionProbe | undefined {
  if (!url.startsWith('s3://')) return undefined;
  const store = openStore(url, options);
  return store instanceof S3Store ? new S3ProtectionProbe(store) : undefined;
}
