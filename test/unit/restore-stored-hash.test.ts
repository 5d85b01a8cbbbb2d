import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import zlib from 'node:zlib';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { DEFAULT_POLICY } from '../../lib/core/config.ts';
import { INFLATE_WORKER_MIN_BYTES } from '../../lib/core/inspect/inflate-worker.ts';
import type { RestoreResult } from '../../lib/core/model.ts';
import { restoreBackup } from '../../lib/core/restore/restore.ts';
import { type Arena, archiveBackup, makeArena, rawTar } from '../support/hostile-archives.ts';

/**
 * From INFLATE_WORKER_MIN_BYTES the restore's inflating worker hashes the stored bytes, and the
 * restore takes that hash instead of hashing them a second time: the archive's references
 * (sidecar, the integrity pass's hash) must still be checked against exactly what was read.
 */
let gz: Buffer;
let gzSha256: string;
beforeAll(() => {
  // Random content does not compress: the archive is past the worker's threshold.
  const tar = rawTar([
    { name: 'data/big.bin', body: randomBytes(INFLATE_WORKER_MIN_BYTES + 1_000_000) },
    { name: 'data/small.txt', body: Buffer.from('small\n') },
  ]);
  gz = zlib.gzipSync(tar, { level: 1 });
  gzSha256 = createHash('sha256').update(gz).digest('hex');
  expect(gz.length).toBeGreaterThanOrEqual(INFLATE_WORKER_MIN_BYTES);
});

let arena: Arena;
beforeEach(async () => {
  arena = await makeArena('bv-stored-hash-');
});
afterEach(async () => {
  await arena.cleanup();
});

const KEY = 'db-20261130.tar.gz';

/** The folder store, counting the reads of the archive itself and the bytes taken from its streams. */
class CountingStore extends FolderStore {
  archiveReads = 0;
  streamedBytes = 0;
  override async open(key: string, options?: Parameters<FolderStore['open']>[1]) {
    const stream = await super.open(key, options);
    if (key !== KEY) return stream;
    this.archiveReads++;
    const counted = new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        this.streamedBytes += chunk.length;
        callback(null, chunk);
      },
    });
    counted.once('close', () => stream.destroy());
    stream.once('error', (error) => counted.destroy(error));
    return stream.pipe(counted);
  }
}
let store: CountingStore;
/** Whether the store offers its local file (read straight into the worker), or only its stream (as S3). */
let local = true;

async function restoreWith(
  archive: Buffer,
  sidecar: string | undefined,
  objectSha256?: string,
): Promise<RestoreResult> {
  await writeFile(path.join(arena.store, KEY), archive);
  if (sidecar !== undefined) await writeFile(path.join(arena.store, `${KEY}.sha256`), `${sidecar}  ${KEY}\n`);
  const backup = await archiveBackup(arena.store, KEY);
  // As discovery pairs a sidecar with its archive.
  if (sidecar !== undefined) backup.manifestKeys = [`${KEY}.sha256`];
  store = new CountingStore(arena.store);
  if (!local) Object.defineProperty(store, 'localPath', { value: undefined });
  return restoreBackup({
    backup,
    store,
    root: arena.root,
    policy: DEFAULT_POLICY,
    probes: [],
    ...(objectSha256 ? { objectSha256: { [KEY]: objectSha256 } } : {}),
  });
}

const codes = (result: RestoreResult) => result.findings.map((f) => f.code).sort();

describe.each([
  { via: 'read from its local file', local: true },
  { via: 'read from the store stream', local: false },
])('$via', (mode) => {
  beforeEach(() => {
    local = mode.local;
  });

  describe('a large gzip archive hashed once, by the worker that inflates it', () => {
    it('matches its sidecar and the integrity pass when both name the bytes read', async () => {
      const result = await restoreWith(gz, gzSha256, gzSha256);
      expect(codes(result)).toEqual([]);
      expect(result.status).toBe('PASS');
      expect(store.archiveReads).toBe(1);
      // Its local file went straight to the inflating worker; without one, the store's stream did.
      expect(store.streamedBytes).toBe(local ? 0 : gz.length);
    });

    it('a sidecar naming other bytes is CHECKSUM_MISMATCH', async () => {
      const result = await restoreWith(gz, 'a'.repeat(64));
      expect(codes(result)).toContain('CHECKSUM_MISMATCH');
      expect(result.status).toBe('FAIL');
    });

    it('an integrity pass that read other bytes is RESTORE_MISMATCH naming the change between the passes', async () => {
      const result = await restoreWith(gz, gzSha256, 'b'.repeat(64));
      const mismatch = result.findings.find((f) => f.code === 'RESTORE_MISMATCH');
      expect(mismatch?.message).toContain(`read for the restore has SHA-256 ${gzSha256}`);
      expect(mismatch?.message).toContain('changed between the passes');
    });

    it('a truncated archive (no hash from the worker) is read again: its sidecar is still compared', async () => {
      const truncated = gz.subarray(0, gz.length - 300_000);
      expect(truncated.length).toBeGreaterThanOrEqual(INFLATE_WORKER_MIN_BYTES);
      const truncatedSha256 = createHash('sha256').update(truncated).digest('hex');
      const againstOriginal = await restoreWith(truncated, gzSha256);
      expect(codes(againstOriginal)).toEqual(
        expect.arrayContaining(['ARCHIVE_TRUNCATED', 'CHECKSUM_MISMATCH']),
      );
      expect(store.archiveReads).toBe(2);

      await arena.cleanup();
      arena = await makeArena('bv-stored-hash-');
      const againstItself = await restoreWith(truncated, truncatedSha256);
      expect(codes(againstItself)).toContain('ARCHIVE_TRUNCATED');
      expect(codes(againstItself)).not.toContain('CHECKSUM_MISMATCH');
    });
  });
});
