import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { backoffMs } from '../../core/retry.ts';

export interface S3StoreOptions {
  client?: S3Client;
  clientConfig?: S3ClientConfig;
  /** Keys per ListObjectsV2 page (S3's maximum and default: 1000). */
  pageSize?: number;
  /**
   * Bytes buffered per upload part. A body is sent from memory, never as an aws-chunked
   * stream: S3-compatible servers that do not speak aws-chunked store its framing as content.
   */
  partSize?: number;
  /** Largest object copied by one CopyObject (S3's limit, 5 GiB); larger ones by UploadPartCopy. */
  maxSingleCopy?: number;
  /** Bytes per UploadPartCopy part (default: 1 GiB, more when 10,000 parts would not hold the object). */
  copyPartSize?: number;
  /** Who this process is to IAM ("role BackupValidator-Integrity..."), named when a denial does not say. */
  identity?: string;
}

/** CopyObject's limit; larger objects are copied part by part (UploadPartCopy). */
export const MAX_SINGLE_COPY = 5 * 1024 ** 3;
export const DEFAULT_COPY_PART_SIZE = 1024 ** 3;
/** Part copies in flight at once: S3 does the work, the client only waits. */
export const COPY_PART_CONCURRENCY = 4;
export const DEFAULT_PART_SIZE = 16 * 1024 * 1024;
export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PARTS = 9_000;

/**
 * One retry configuration for every request: 5xx, throttling and network errors before the
 * response are retried by the SDK's standard strategy (exponential backoff with jitter, longer
 * after SlowDown), up to 6 attempts. Not "adaptive": its client-side rate limiter would slow
 * the one shared client (every read of the run) to about one request a second after a single
 * SlowDown. Bodies are validated against the checksum S3 kept for the object, where it has
 * one (a mismatch fails the read, so the caller reads again rather than reporting damage).
 * Request checksums stay off: the SDK would stream uploads as aws-chunked, which
 * S3-compatible servers store as content; `put` sends its own SHA-256 instead.
 */
export const S3_CLIENT_DEFAULTS: S3ClientConfig = {
  followRegionRedirects: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_SUPPORTED',
  retryMode: 'standard',
  maxAttempts: 6,
};

/**
 * A body that breaks (reset, early end) is resumed with a ranged GET pinned to the same ETag.
 * Reads in a row that bring no new byte are bounded by the attempt budget of one request
 * (`maxAttempts`): when that many brought nothing, the read fails.
 */
export const MAX_READS_WITHOUT_PROGRESS = S3_CLIENT_DEFAULTS.maxAttempts as number;

/**
 * The wait before a resume. After a read that brought bytes: none, at once (the connection
 * broke, the store is answering; a wait would only add to the read's time). After reads that
 * brought nothing: as the SDK's standard strategy waits between attempts (full jitter over
 * 100 ms, doubling, at most 20 s), so a store that keeps failing is not hammered.
 */
export function resumeDelayMs(readsWithoutProgress: number, random: () => number = Math.random): number {
  return Math.floor(backoffMs(readsWithoutProgress, { baseMs: 100, capMs: 20_000 }, random));
}
