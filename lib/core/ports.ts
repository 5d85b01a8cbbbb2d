import type { Readable } from 'node:stream';
import type { ObjectInfo } from './model.ts';

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

/** Where the one message of a failed run goes (an SNS topic that e-mails the operators). */
export interface Notifier {
  notify(subject: string, body: string): Promise<void>;
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
