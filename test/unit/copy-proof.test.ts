import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { renderProtection } from '../../lib/cli/render.ts';
import { proveByChecksums } from '../../lib/core/copy-proof.ts';
import type { RunReport } from '../../lib/core/model.ts';
import type { StoredChecksums } from '../../lib/core/ports.ts';

const bytes = Buffer.from('the verified backup');
const sha256Hex = createHash('sha256').update(bytes).digest('hex');
const sha256B64 = Buffer.from(sha256Hex, 'hex').toString('base64');

const full = (values: StoredChecksums['values'], size = bytes.length): StoredChecksums => ({
  size,
  type: 'FULL_OBJECT',
  values,
});
const composite = (value: string, partSizes: number[]): StoredChecksums => ({
  size: partSizes.reduce((a, b) => a + b, 0),
  type: 'COMPOSITE',
  values: { SHA256: `${value}-${partSizes.length}` },
  partsCount: partSizes.length,
  partSizes,
});

describe('issue 15: what stored checksums prove about a copy', () => {
  it("a copy's FULL_OBJECT SHA-256 equal to the integrity pass's SHA-256 proves it, source or not", () => {
    expect(proveByChecksums(full({ SHA256: sha256B64 }), undefined, sha256Hex)).toEqual({
      proven: true,
      how: 'SHA256 FULL_OBJECT = the SHA-256 the integrity pass computed',
    });
    expect(proveByChecksums(full({ SHA256: sha256B64 }), undefined, '0'.repeat(64))).toBeUndefined();
  });

  it('FULL_OBJECT CRC64NVME values compare whatever the part boundaries', () => {
    const copy = { ...full({ CRC64NVME: 'q83vEjRWeJA=' }), partsCount: 3 };
    const source = full({ CRC64NVME: 'q83vEjRWeJA=' });
    expect(proveByChecksums(copy, source, sha256Hex)).toEqual({
      proven: true,
      how: 'CRC64NVME FULL_OBJECT = source',
    });
    expect(proveByChecksums(copy, full({ CRC64NVME: 'AAAAAAAAAAA=' }), sha256Hex)).toBeUndefined();
  });

  it('COMPOSITE values compare only across identical part boundaries', () => {
    expect(proveByChecksums(composite('abc', [8, 8, 3]), composite('abc', [8, 8, 3]), sha256Hex)).toEqual({
      proven: true,
      how: 'SHA256 COMPOSITE = source',
    });
    // Same bytes, other part sizes: the composites differ and prove nothing either way.
    expect(
      proveByChecksums(composite('abc', [16, 3]), composite('xyz', [8, 8, 3]), sha256Hex),
    ).toBeUndefined();
    expect(proveByChecksums(composite('abc', [10, 9]), composite('abc', [9, 10]), sha256Hex)).toBeUndefined();
  });

  it('a COMPOSITE never compares with a FULL_OBJECT, nor one algorithm with another', () => {
    expect(proveByChecksums(composite('abc', [19]), full({ SHA256: 'abc-1' }), undefined)).toBeUndefined();
    expect(
      proveByChecksums(full({ CRC32C: 'AAAAAA==' }), full({ CRC64NVME: 'AAAAAA==' }), undefined),
    ).toBeUndefined();
  });

  it('a value with a -<parts> suffix and no type is taken as COMPOSITE', () => {
    const untyped = (v: string): StoredChecksums => ({ size: 19, values: { SHA256: v }, partsCount: 2 });
    expect(proveByChecksums(untyped('abc-2'), untyped('abc-2'), undefined)?.how).toBe(
      'SHA256 COMPOSITE = source',
    );
    expect(proveByChecksums(untyped('abc-2'), full({ SHA256: 'abc-2' }, 19), undefined)).toBeUndefined();
  });

  it('nothing stored, or sizes that differ, prove nothing: the copy is read', () => {
    expect(proveByChecksums(undefined, full({ SHA256: sha256B64 }), sha256Hex)).toBeUndefined();
    expect(
      proveByChecksums(full({ CRC32: 'AAAA' }, 5), full({ CRC32: 'AAAA' }, 6), undefined),
    ).toBeUndefined();
  });
});

describe('issue 15: the command line says what the copy proofs spared', () => {
  it('prints the objects proven by checksum, the bytes not downloaded and those read back', () => {
    const report = {
      backups: [],
      copyProof: { provenByChecksum: 3, provenByRead: 1, bytesNotDownloaded: 3 * 1024 ** 2 },
    } as unknown as RunReport;
    expect(renderProtection(report)).toBe(
      'Copies: 3 object(s) proven by stored checksums (3.0 MiB not downloaded), 1 read back',
    );
    expect(renderProtection({ backups: [] } as unknown as RunReport)).toBe('');
  });
});
