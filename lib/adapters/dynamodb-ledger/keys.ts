import { createHash } from 'node:crypto';
import type { Stage } from '../../core/ledger.ts';

/** DynamoDB's limit on an index sort key, in UTF-8 bytes. */
const INDEX_SORT_KEY_BYTES = 1024;

/** Sort-key and partition-key prefixes; docs/ledger.md is the map. */
export const K = {
  run: (runId: string) => `RUN#${keyPart(runId)}`,
  runSk: '#RUN',
  resultSk: (backupId: string, stage: Stage) => `RESULT#${keyPart(backupId)}#${stage}`,
  backup: (backupId: string) => `BACKUP#${keyPart(backupId)}`,
  backupSk: '#BACKUP',
  checksumPrefix: 'SUM#',
  checksumSk: (path: string) => `SUM#${keyPart(path)}`,
  copyPrefix: 'COPY#',
  copySk: (location: string) => `COPY#${keyPart(location)}`,
  series: (series: string) => `SERIES#${keyPart(series)}`,
  source: (source: string) => `SOURCE#${keyPart(sourceKey(source))}`,
  seriesSk: '#STATUS',
  baselineSk: 'BASELINE',
  runsIndexPk: 'RUNS',
  seriesIndexPk: 'SERIES',
  verifiedIndexPk: 'VERIFIED',
  /** gsi1 partition of a series' backups, sorted by last verification (the gsi2 sort key's format). */
  coverage: (series: string) => `COVERAGE#${keyPart(series)}`,
  /** Sorts before every ISO-8601 time, so never-verified backups fall in every "not verified since" range. */
  neverVerified: '!never',
};

/** A source as the ledger keys it: `s3://b/p/` and `s3://b/p` are one source. */
export function sourceKey(source: string): string {
  return source.replace(/\/+$/, '') || source;
}

/**
 * Keys have byte limits (partition 2048, sort 1024, the same for index keys); very long ids and paths
 * are replaced by their hash. A key made of several parts gives each a share of the limit.
 */
export function keyPart(value: string, maxBytes = 700): string {
  if (Buffer.byteLength(value) <= maxBytes) return value;
  return `sha256:${createHash('sha256').update(value).digest('hex')}`;
}

/** An index sort key within DynamoDB's limit: `head` kept (it orders the index), `tail` hashed if needed. */
export function boundedSortKey(head: string, tail: string): string {
  if (Buffer.byteLength(head) + Buffer.byteLength(tail) <= INDEX_SORT_KEY_BYTES) return `${head}${tail}`;
  return `${head}sha256:${createHash('sha256').update(tail).digest('hex')}`;
}

/** A backup's place in the "not verified since" index and its series' coverage order. */
export function verifiedSortKey(at: string, backupId: string): string {
  return `${at}#${keyPart(backupId)}`;
}

export function neverVerifiedSortKey(backupId: string): string {
  return `${K.neverVerified}#${keyPart(backupId)}`;
}
