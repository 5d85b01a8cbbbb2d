/** What one read of an archive found, and what the read is asked to do. */
import type { FileHandle } from 'node:fs/promises';
import type { ManifestLineError } from '../manifest.ts';
import type { ContentDigest } from '../model.ts';
import type { RestoreLimitValues } from '../restore/limits.ts';
import type { CrcAlgorithm } from './crc.ts';

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface ArchiveProblem {
  /** `limit`: the archive passed a restore limit (size, expansion ratio, entries) and was not read further. */
  kind: 'corrupt' | 'truncated' | 'limit';
  layer: 'gzip' | 'zstd' | 'tar';
  /**
   * Byte offset: in the decompressed tar stream for tar; for gzip/zstd, the stored bytes fed to
   * the decompressor when it failed (the damage lies at or before it). Absent when unknown.
   */
  offset?: number;
  member?: string;
  message: string;
}

/** What a `SHA256SUMS` at the root of a tar archive said about the archive's members. */
export interface RootManifestCheck {
  /** The member's name as stored in the archive. */
  memberPath: string;
  errors: ManifestLineError[];
  verified: number;
  mismatched: Array<{ path: string; expected: string; actual: string }>;
  /** Listed but not in the archive. */
  missing: Array<{ path: string; expected: string }>;
  /** Regular files (and hard links) in the archive the manifest does not list. */
  unlisted: string[];
  /**
   * The archive could not be read to its end (truncated, or decompression failed): files listed
   * but not reached are not counted as missing, nor are files reached counted as unlisted.
   */
  incomplete: boolean;
}

export interface ArchiveInspection {
  storedSha256: string;
  /** The CRC of the stored bytes asked for with `crc`, base64 as S3 reports it. */
  storedCrc?: string;
  storedBytes: number;
  decompressedBytes: number;
  /** Tar entries of every kind (files, directories, links, devices); 1 for a plain compressed file. */
  entries: number;
  /** Regular files (incl. hard links to them). */
  files: number;
  /** Bytes of file content (sparse files at their real size). */
  contentBytes: number;
  /** Bytes fed to member hashes, whole members or not (holes of sparse members included). */
  hashedBytes: number;
  rootManifest?: RootManifestCheck;
  /** Corruption or truncation; empty when the archive read cleanly. */
  problems: ArchiveProblem[];
  /** Decompression and tar parsing reached the end of the archive (damage may still have been skipped). */
  readToEnd: boolean;
}

export interface InspectOptions {
  onEntry?(digest: ContentDigest): void;
  signal?: AbortSignal;
  /** Stored bytes read so far, as deltas. */
  onProgress?(bytesDelta: number): void;
  /** Name of the content of a plain compressed file (default: the format's stem). */
  contentName?: string;
  /** Also compute this CRC of the stored bytes (to compare with the store's full-object checksum). */
  crc?: CrcAlgorithm;
  /** The restore's limits, enforced while reading (default: the safe defaults). */
  limits?: RestoreLimitValues;
  /** Memory for the member records a root SHA256SUMS is checked against (default MAX_MEMBER_TABLE_BYTES). */
  memberTableBytes?: number;
  /** Inflate gzip in a worker thread while this one parses (worth its start-up for large archives only). */
  inflateInWorker?: boolean;
  /**
   * The stored object as a local file: with `inflateInWorker`, its bytes are read from it straight
   * into the worker's shared slots, and `input` is not read (a stream allocates a buffer per chunk:
   * measured here, ~1 s of CPU for 521 MiB against 0.2 s).
   */
  file?: FileHandle;
}
