import type { Readable } from 'node:stream';
import type { Policy } from './config.ts';
import type { Backup, IntegrityResult, ObjectInfo } from './model.ts';

/**
 * A place backups live: a folder or an S3 prefix. Read-only by construction: no method
 * of this port writes, so nothing built on it can touch a source.
 * Errors are `StoreError`s.
 */
export interface ObjectStore {
  /** The source as the user named it (folder path or s3://bucket/prefix). */
  readonly url: string;
  /** Every object under the root, keys relative to it, in ascending key order, paged lazily. */
  list(): AsyncIterable<ObjectInfo>;
  /**
   * The object's bytes as a stream. With `listed`, the read is pinned to that version and
   * checked against its size: a store that can resume a broken read resumes it on the same
   * version; an object changed since it was listed fails with a `changed` StoreError.
   */
  open(key: string, options?: ReadOptions): Promise<Readable>;
  /** Metadata of one object. */
  head(key: string): Promise<ObjectInfo>;
  /** A local file path for the object where one exists (lets a worker read it directly). */
  localPath?(key: string): string | undefined;
  /** The region the store's data lives in (an S3 bucket's), where that means something. */
  region?(): Promise<string>;
}

export interface ReadOptions {
  highWaterMark?: number;
  /** What the listing said of the object. */
  listed?: ListedVersion;
}

/** The version of an object a listing saw. */
export interface ListedVersion {
  size: number;
  /** The store's entity tag (S3 ETag, quoted), when it has one. */
  etag?: string;
}

/** A redundancy target: a store that may also be written. Never a source. */
export interface CopyTarget extends ObjectStore {
  put(key: string, body: Readable, size: number): Promise<void>;
  /** Server-side copy from another store of the same kind, when possible; false when not. */
  copyFrom?(source: ObjectStore, sourceKey: string, key: string): Promise<boolean>;
}

/** Checksums recorded when a backup's objects were first seen (the reference of last resort). */
export interface FirstSeenChecksum {
  path: string;
  sha256: string;
  size: number;
  firstSeenAt: string;
}

export interface ChecksumHistory {
  /**
   * Records these checksums for paths never seen before and returns what was recorded
   * earlier for paths seen before (same backup id). Idempotent.
   */
  recordFirstSeen(
    backupId: string,
    checksums: Array<Omit<FirstSeenChecksum, 'firstSeenAt'>>,
  ): Promise<FirstSeenChecksum[]>;
  /** What was recorded for this backup, recording nothing. */
  firstSeenOf(backupId: string): Promise<FirstSeenChecksum[]>;
}

/** What an integrity pass is given besides the backup and its store (the core's IntegrityOptions as the stage fills them). */
export interface IntegrityPassOptions {
  policy: Policy;
  history?: ChecksumHistory;
  archivePatterns?: readonly string[];
  onProgress?(bytesDelta: number): void;
  signal?: AbortSignal;
}

/**
 * Integrity passes run off the calling thread (the CLI's worker threads). `check` answers as
 * checkIntegrityConfirmed would (same findings, same first-seen records through `history`), or
 * returns undefined for a backup it leaves to the caller.
 */
export interface IntegrityPasses {
  check(
    backup: Backup,
    store: ObjectStore,
    options: IntegrityPassOptions,
  ): Promise<IntegrityResult> | undefined;
}

/** Where the one message of a failed run goes (an SNS topic that e-mails the operators). */
export interface Notifier {
  notify(subject: string, body: string): Promise<void>;
}

/** Object Lock retention modes, as S3 names them. */
export type LockMode = 'GOVERNANCE' | 'COMPLIANCE';

/** One lifecycle rule of a bucket, reduced to what decides whether and when it removes an object. */
export interface LifecycleRule {
  id: string;
  /** Key prefix the rule applies to (bucket-wide keys; '' for every key). */
  prefix: string;
  /** Tags the rule's filter needs (the object's tags are not read: such a rule may apply). */
  tags: string[];
  objectSizeGreaterThan?: number;
  objectSizeLessThan?: number;
  /** Current versions expire this many days after creation. */
  expirationDays?: number;
  /** Current versions expire on this date (ISO-8601). */
  expirationDate?: string;
  /** Noncurrent versions are removed this many days after they become noncurrent. */
  noncurrentDays?: number;
}

/** What protects a bucket's objects against deletion, as its configuration says. */
export interface BucketProtection {
  bucket: string;
  versioning: 'Enabled' | 'Suspended' | 'Off';
  objectLock: boolean;
  defaultRetention?: { mode: LockMode; days: number };
  /** Enabled rules only. */
  lifecycle: LifecycleRule[];
}

/** One object's Object Lock state. */
export interface ObjectProtection {
  retention?: { mode: LockMode; retainUntil: string };
  legalHold: boolean;
}

/**
 * Reads (never changes) the deletion protection of a source's bucket and objects. Errors are
 * `StoreError`s; only S3 sources have one.
 */
export interface ProtectionProbe {
  /** The store's root key prefix inside its bucket (lifecycle filters name bucket-wide keys). */
  readonly prefix: string;
  bucket(): Promise<BucketProtection>;
  /** Object Lock state of one object (key relative to the store's root); only asked of Object Lock buckets. */
  object(key: string): Promise<ObjectProtection>;
}

/** Checksum algorithms S3 stores with an object. */
export type ChecksumAlgorithm = 'SHA256' | 'SHA1' | 'CRC32' | 'CRC32C' | 'CRC64NVME';

/** The checksums a store keeps with one object, as it reports them (S3 HeadObject/GetObjectAttributes). */
export interface StoredChecksums {
  size: number;
  /**
   * FULL_OBJECT: a checksum of the whole object, whatever its parts. COMPOSITE: a checksum of the
   * parts' checksums (multipart uploads; the value ends in `-<parts>`), so it depends on the part boundaries.
   */
  type?: 'FULL_OBJECT' | 'COMPOSITE';
  /** Values as the store reports them (base64, a COMPOSITE one with its `-<parts>` suffix). */
  values: Partial<Record<ChecksumAlgorithm, string>>;
  /** Number of parts of a multipart object. */
  partsCount?: number;
  /** Each part's size in order, when the store lists them. */
  partSizes?: number[];
}

/** Reads the checksums a store keeps with its objects, without reading the objects. */
export interface ChecksumReader {
  /** Undefined when the store keeps no checksum for the object. */
  checksums(key: string): Promise<StoredChecksums | undefined>;
}

/** Where `backup` writes: a folder or an S3 prefix. Errors are `StoreError`s. */
export interface BackupTarget {
  readonly url: string;
  /** Whether an object exists under `key` (a backup is never written over another). */
  exists(key: string): Promise<boolean>;
  /**
   * Writes a new object from `body`, visible under `key` only once complete. Returns the
   * full-object checksum the store recorded for it, where it keeps one.
   */
  write(key: string, body: Readable): Promise<{ checksum?: { algorithm: string; base64: string } }>;
  /** Removes an object this command wrote (a backup it could not finish). */
  remove(key: string): Promise<void>;
}
