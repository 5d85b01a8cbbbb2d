import type { CrcAlgorithm } from '../inspect/crc.ts';
import type { BackupObject } from '../model.ts';
import type { ObjectStore } from '../ports.ts';
import type { FindingList } from './finding-list.ts';
import { compareReference, type ObjectState } from './object-state.ts';
import { isAbort } from './reading.ts';

/**
 * The full-object checksum the store kept for an object: its SHA-256 when there is one (the
 * pass computes it anyway), else its CRC64NVME or CRC32C, which the pass then computes while
 * the bytes stream past (~1 GB/s, slower than SHA-256, so only when it is the only reference
 * the store has).
 */
export type StoreChecksum = { sha256: string } | { crc: CrcAlgorithm; expected: string };

const STORE_ALGORITHMS = new Set(['SHA256', 'CRC64NVME', 'CRC32C']);

function storeChecksumOf(object: {
  checksumSha256?: string;
  checksumCrc64nvme?: string;
  checksumCrc32c?: string;
}): StoreChecksum | undefined {
  if (object.checksumSha256) return { sha256: object.checksumSha256.toLowerCase() };
  if (object.checksumCrc64nvme) return { crc: 'CRC64NVME', expected: object.checksumCrc64nvme };
  if (object.checksumCrc32c) return { crc: 'CRC32C', expected: object.checksumCrc32c };
  return undefined;
}

/** Asks the store (head) only when its listing names an algorithm whose value it did not give. */
async function storeChecksum(store: ObjectStore, object: BackupObject): Promise<StoreChecksum | undefined> {
  const known = storeChecksumOf(object);
  if (known && 'sha256' in known) return known;
  const listed = object.checksumAlgorithms?.map((a) => a.toUpperCase()) ?? [];
  const unfetched =
    (listed.includes('SHA256') && !object.checksumSha256) ||
    (!known && listed.some((a) => STORE_ALGORITHMS.has(a)));
  if (!unfetched) return known;
  return storeChecksumOf(await store.head(object.key)) ?? known;
}

/** Looks the store's checksum up before the read, so a CRC can be computed during it. */
export async function lookUpStoreChecksum(
  store: ObjectStore,
  object: BackupObject,
  path: string,
  findings: FindingList,
  signal?: AbortSignal,
): Promise<StoreChecksum | undefined> {
  try {
    return await storeChecksum(store, object);
  } catch (error) {
    if (isAbort(error, signal)) throw error;
    findings.unreadable(`the stored checksum of ${path}`, error, path);
    return undefined;
  }
}

export function crcOf(stored: StoreChecksum | undefined): CrcAlgorithm | undefined {
  return stored && 'crc' in stored ? stored.crc : undefined;
}

export function compareStoreChecksum(
  state: ObjectState,
  expected: StoreChecksum | undefined,
  actualCrc: string | undefined,
  findings: FindingList,
): void {
  if (!expected || state.sha256 === undefined) return;
  const advice = 'the object changed after upload or was damaged; restore it from another copy';
  if ('sha256' in expected) {
    compareReference(
      state,
      expected.sha256,
      'the checksum the store kept at upload (ChecksumSHA256)',
      findings,
      advice,
    );
    return;
  }
  if (actualCrc === undefined) return;
  if (actualCrc === expected.expected) {
    state.references++;
    return;
  }
  state.mismatch = true;
  findings.add(
    'CHECKSUM_MISMATCH',
    `${state.path}: ${expected.crc} is ${actualCrc} but the checksum the store kept at upload (Checksum${expected.crc}) is ${expected.expected}; ${advice}`,
    state.path,
  );
}
