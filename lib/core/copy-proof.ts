import type { ChecksumAlgorithm, ObjectStore, StoredChecksums } from './ports.ts';
import type { CopyProof } from './protection-report.ts';
import type { StageContext } from './stages/context.ts';

/**
 * What a copy's stored checksums prove about it, without reading it (issue 15):
 *
 * - A FULL_OBJECT SHA-256 on the copy is compared with the SHA-256 the integrity pass computed
 *   from the backup's bytes: equal proves the copy holds the verified bytes.
 * - FULL_OBJECT checksums of the same algorithm on the source and the copy compare whatever
 *   their part boundaries (S3 computes them over the whole object, multipart or not: CRC64NVME
 *   always, CRC32/CRC32C when asked, SHA-256/SHA-1 for single-part objects).
 * - COMPOSITE checksums (a checksum of the parts' checksums, `<value>-<parts>`) of the same
 *   algorithm compare only when both objects have the same part boundaries: equal values with
 *   the same part count prove equal parts; different boundaries give different values for the
 *   same bytes, so nothing is concluded.
 * - A COMPOSITE never compares with a FULL_OBJECT, nor one algorithm with another.
 *
 * Only equality proves. A difference is never judged here: the caller reads the copy, which
 * says exactly what differs. CRCs prove against accidental damage, not against a forger.
 */
export interface ChecksumProof {
  proven: true;
  /** How, e.g. "CRC64NVME FULL_OBJECT = source". */
  how: string;
}

/** Algorithms tried in this order: the cryptographic hash first. */
const ALGORITHMS: readonly ChecksumAlgorithm[] = ['SHA256', 'CRC64NVME', 'CRC32C', 'CRC32', 'SHA1'];

/** A value S3 reports for a multipart object without saying its type carries `-<parts>`. */
function typeOf(checksums: StoredChecksums, value: string): 'FULL_OBJECT' | 'COMPOSITE' {
  if (checksums.type) return checksums.type;
  return /-\d+$/.test(value) ? 'COMPOSITE' : 'FULL_OBJECT';
}

function sameBoundaries(a: StoredChecksums, b: StoredChecksums): boolean {
  if (a.partsCount === undefined || a.partsCount !== b.partsCount) return false;
  if (a.partSizes && b.partSizes) {
    return a.partSizes.length === b.partSizes.length && a.partSizes.every((s, i) => s === b.partSizes?.[i]);
  }
  return true;
}

/**
 * Whether the copy's stored checksums prove it equal to the verified backup object, without
 * reading it; undefined when nothing comparable exists or a comparison came out different.
 * `verifiedSha256`: lower-case hex SHA-256 of the backup object's bytes, when known.
 */
export function proveByChecksums(
  copy: StoredChecksums | undefined,
  source: StoredChecksums | undefined,
  verifiedSha256: string | undefined,
): ChecksumProof | undefined {
  if (!copy) return undefined;
  if (source && source.size !== copy.size) return undefined;
  const sha = copy.values.SHA256;
  if (verifiedSha256 && sha && typeOf(copy, sha) === 'FULL_OBJECT') {
    if (Buffer.from(sha, 'base64').toString('hex') === verifiedSha256)
      return { proven: true, how: 'SHA256 FULL_OBJECT = the SHA-256 the integrity pass computed' };
    return undefined;
  }
  if (!source) return undefined;
  for (const algorithm of ALGORITHMS) {
    const mine = copy.values[algorithm];
    const theirs = source.values[algorithm];
    if (!mine || !theirs) continue;
    const type = typeOf(copy, mine);
    if (type !== typeOf(source, theirs)) continue;
    if (type === 'COMPOSITE' && !sameBoundaries(copy, source)) continue;
    if (mine === theirs) return { proven: true, how: `${algorithm} ${type} = source` };
    return undefined;
  }
  return undefined;
}

/** A proof of one object's copy by stored checksums, with the bytes it spared. */
export interface ObjectProof extends ChecksumProof {
  bytes: number;
}

/**
 * Proves one copied object by stored checksums when both stores keep comparable ones; undefined
 * when the copy must be read. A store that cannot tell its checksums (an error) is read too: the
 * read is the proof of last resort and reports any real failure.
 */
export async function proveCopy(
  ctx: Pick<StageContext, 'checksumsOf'>,
  source: ObjectStore,
  target: ObjectStore,
  key: string,
  verifiedSha256: string | undefined,
): Promise<ObjectProof | undefined> {
  const copyReader = ctx.checksumsOf?.(target);
  if (!copyReader) return undefined;
  try {
    const copy = await copyReader.checksums(key);
    if (!copy) return undefined;
    const direct = proveByChecksums(copy, undefined, verifiedSha256);
    const proof =
      direct ?? proveByChecksums(copy, await ctx.checksumsOf?.(source)?.checksums(key), verifiedSha256);
    return proof ? { ...proof, bytes: copy.size } : undefined;
  } catch {
    return undefined;
  }
}

/** Counts one target's proofs for a backup as its objects are verified. */
export function copyProofTally(target: string): {
  proof: CopyProof;
  record(proof: ObjectProof): void;
  read(): void;
} {
  const proof: CopyProof = {
    target,
    verified: false,
    provenByChecksum: 0,
    provenByRead: 0,
    comparisons: [],
    bytesNotDownloaded: 0,
  };
  return {
    proof,
    record(p) {
      proof.provenByChecksum++;
      proof.bytesNotDownloaded += p.bytes;
      if (!proof.comparisons.includes(p.how)) proof.comparisons.push(p.how);
    },
    read() {
      proof.provenByRead++;
    },
  };
}
