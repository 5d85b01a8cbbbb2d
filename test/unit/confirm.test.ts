import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { DEFAULT_POLICY } from '../../lib/core/config.ts';
import { checkIntegrityConfirmed } from '../../lib/core/confirm.ts';
import { StoreError, type StoreErrorKind } from '../../lib/core/errors.ts';
import type { IntegrityResult } from '../../lib/core/model.ts';
import type { ReadOptions } from '../../lib/core/ports.ts';
import {
  archiveBackupOf,
  directoryBackupOf,
  flipBit,
  gzip,
  MemoryChecksumHistory,
  makeTempDir,
  packTar,
  sampleBytes,
  sha256Hex,
  sha256sums,
  writeTree,
} from '../support/archives.ts';

/**
 * The real folder store with faults on the way: a bit flipped in the first `flips` reads of
 * each key, or every read of some keys failing with a StoreError of a given kind.
 */
class FaultyStore extends FolderStore {
  readonly reads: string[] = [];
  readonly options: Array<ReadOptions | undefined> = [];
  constructor(
    dir: string,
    private readonly flips: Record<string, number> = {},
    private readonly failing: Record<string, StoreErrorKind> = {},
    private readonly flipAt: Record<string, number> = {},
  ) {
    super(dir);
  }
  override async open(key: string, options?: ReadOptions): Promise<Readable> {
    this.reads.push(key);
    this.options.push(options);
    const kind = this.failing[key];
    if (kind) throw new StoreError(`injected ${kind} fault reading ${key}`, kind, key);
    const stream = await super.open(key, options);
    const left = this.flips[key] ?? 0;
    if (left === 0) return stream;
    this.flips[key] = left - 1;
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    const data = Buffer.concat(chunks);
    return Readable.from([flipBit(data, this.flipAt[key] ?? Math.floor(data.length / 2))]);
  }
  override localPath(): string {
    return undefined as unknown as string;
  }
  count(key: string): number {
    return this.reads.filter((k) => k === key).length;
  }
}

let root: string;
beforeEach(async () => {
  root = await makeTempDir('bv-confirm-');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const codes = (r: IntegrityResult) => [...new Set(r.findings.map((f) => f.code))].sort();
const PREFIX = 'files/2025-06-25T0000Z/';
const file = sampleBytes(40_000, 7);

describe('issue 10 (faults): damage is confirmed by a second read before it is reported', () => {
  it('issue 10 (faults): a healthy backup is read once; a bit flipped on its first read is read again and passes', async () => {
    await writeTree(path.join(root, ...PREFIX.split('/')), {
      'a.bin': file,
      SHA256SUMS: sha256sums({ 'a.bin': file }),
    });
    const clean = new FaultyStore(root);
    const backup = await directoryBackupOf(clean, PREFIX);
    const history = new MemoryChecksumHistory();
    const healthy = await checkIntegrityConfirmed(backup, clean, { policy: DEFAULT_POLICY, history });
    expect([healthy.status, ...codes(healthy)]).toEqual(['PASS']);
    expect(clean.count(`${PREFIX}a.bin`)).toBe(1);
    // Every read is pinned to what the listing said.
    expect(clean.options.find((o) => o?.listed)?.listed).toEqual({ size: file.length });

    const flaky = new FaultyStore(root, { [`${PREFIX}a.bin`]: 1 });
    const fresh = new MemoryChecksumHistory();
    const result = await checkIntegrityConfirmed(backup, flaky, { policy: DEFAULT_POLICY, history: fresh });
    expect([result.status, ...codes(result)]).toEqual(['PASS']);
    expect(flaky.count(`${PREFIX}a.bin`)).toBe(2);
    // The hash recorded is the one the manifest vouched for, not the flipped one.
    expect((await fresh.firstSeenOf(backup.id)).map((r) => r.sha256)).toEqual([sha256Hex(file)]);
  });

  it('issue 10 (faults): a SHA256SUMS made unreadable on its first read (its file then unlisted, and flipped too) passes on the second', async () => {
    await writeTree(path.join(root, ...PREFIX.split('/')), {
      'a.bin': file,
      SHA256SUMS: sha256sums({ 'a.bin': file }),
    });
    // Byte 64 is the space after the hash: flipped, the line is malformed.
    const flaky = new FaultyStore(
      root,
      { [`${PREFIX}a.bin`]: 1, [`${PREFIX}SHA256SUMS`]: 1 },
      {},
      { [`${PREFIX}SHA256SUMS`]: 64 },
    );
    const backup = await directoryBackupOf(flaky, PREFIX);
    const history = new MemoryChecksumHistory();
    const result = await checkIntegrityConfirmed(backup, flaky, { policy: DEFAULT_POLICY, history });
    expect([result.status, ...codes(result)]).toEqual(['PASS']);
    expect(flaky.count(`${PREFIX}SHA256SUMS`)).toBe(2);
  });

  it('issue 10 (faults): damage both reads find stands with its code, at the cost of one extra read', async () => {
    await writeTree(path.join(root, ...PREFIX.split('/')), {
      'a.bin': file,
      SHA256SUMS: `${'1'.repeat(64)}  a.bin\n`,
    });
    const store = new FaultyStore(root);
    const backup = await directoryBackupOf(store, PREFIX);
    const result = await checkIntegrityConfirmed(backup, store, {
      policy: DEFAULT_POLICY,
      history: new MemoryChecksumHistory(),
    });
    expect([result.status, ...codes(result)]).toEqual(['FAIL', 'CHECKSUM_MISMATCH']);
    expect(store.count(`${PREFIX}a.bin`)).toBe(2);
  });

  it('issue 10 (faults): a corrupt archive read the same way twice is ARCHIVE_CORRUPT; an unreferenced one corrupt on one read only is CHECK_FAILED', async () => {
    const archive = gzip(await packTar([{ name: 'dump.sql', content: sampleBytes(30_000, 3) }]));
    const corrupt = flipBit(archive, Math.floor(archive.length / 2));
    await writeTree(root, {
      'db/db-2025-06-25T0000Z.tar.gz': archive,
      'db/db-2025-06-24T0000Z.tar.gz': corrupt,
    });
    const store = new FaultyStore(root, { 'db/db-2025-06-25T0000Z.tar.gz': 1 });
    const history = new MemoryChecksumHistory();
    const damaged = await archiveBackupOf(store, 'db/db-2025-06-24T0000Z.tar.gz');
    const bad = await checkIntegrityConfirmed(damaged, store, { policy: DEFAULT_POLICY, history });
    expect(codes(bad)).toEqual(['ARCHIVE_CORRUPT']);
    expect(bad.status).toBe('FAIL');
    expect(await history.firstSeenOf(damaged.id)).toEqual([]);

    const healthy = await archiveBackupOf(store, 'db/db-2025-06-25T0000Z.tar.gz');
    const good = await checkIntegrityConfirmed(healthy, store, { policy: DEFAULT_POLICY, history });
    // No reference to say which read was right (one corrupt, one clean): a transient fault.
    expect(codes(good)).toEqual(['CHECK_FAILED', 'NO_REFERENCE_CHECKSUM']);
    expect(good.status).toBe('FAIL');
    expect(store.count('db/db-2025-06-25T0000Z.tar.gz')).toBe(2);
    expect(await history.firstSeenOf(healthy.id)).toEqual([]);
  });

  it('issue 10 (faults): a large archive (inflated in a worker thread) is read once when healthy; damage on one read is read again; damage on both stands', async () => {
    const content = randomBytes(17 * 1024 * 1024);
    const archive = gzip(
      await packTar([
        { name: 'SHA256SUMS', content: sha256sums({ 'big.bin': content }) },
        { name: 'big.bin', content },
      ]),
      1,
    );
    const key = 'big/big-2025-06-25T0000Z.tar.gz';
    await writeTree(root, {
      [key]: archive,
      [`${key}.sha256`]: `${sha256Hex(archive)}  big-2025-06-25T0000Z.tar.gz\n`,
    });
    const clean = new FaultyStore(root);
    const backup = await archiveBackupOf(clean, key);
    expect(backup.bytes).toBeGreaterThan(16 * 1024 * 1024);
    const healthy = await checkIntegrityConfirmed(backup, clean, {
      policy: DEFAULT_POLICY,
      history: new MemoryChecksumHistory(),
    });
    expect([healthy.status, ...codes(healthy)]).toEqual(['PASS']);
    expect(healthy.files).toBe(2);
    expect(clean.count(key)).toBe(1);

    // The gzip trailer's CRC flipped: found at the very end of the pass.
    const trailer = { [key]: archive.length - 6 };
    const flaky = new FaultyStore(root, { [key]: 1 }, {}, trailer);
    const once = await checkIntegrityConfirmed(backup, flaky, {
      policy: DEFAULT_POLICY,
      history: new MemoryChecksumHistory(),
    });
    expect([once.status, ...codes(once)]).toEqual(['PASS']);
    expect(flaky.count(key)).toBe(2);

    const broken = new FaultyStore(root, { [key]: 2 }, {}, trailer);
    const twice = await checkIntegrityConfirmed(backup, broken, {
      policy: DEFAULT_POLICY,
      history: new MemoryChecksumHistory(),
    });
    expect(twice.status).toBe('FAIL');
    expect(codes(twice)).toContain('ARCHIVE_CORRUPT');
    expect(broken.count(key)).toBe(2);
  });

  it('issue 10 (faults): a large archive read from its local file (no stream) passes once, and damage on disk is read twice and stands', async () => {
    const content = randomBytes(17 * 1024 * 1024);
    const archive = gzip(await packTar([{ name: 'big.bin', content }]), 1);
    const key = 'big/big-2025-06-25T0000Z.tar.gz';
    await writeTree(root, {
      [key]: archive,
      [`${key}.sha256`]: `${sha256Hex(archive)}  big-2025-06-25T0000Z.tar.gz\n`,
    });
    class CountingStore extends FolderStore {
      reads = 0;
      override async open(k: string, o?: ReadOptions): Promise<Readable> {
        if (k === key) this.reads++;
        return super.open(k, o);
      }
    }
    const store = new CountingStore(root);
    expect(store.localPath(key)).toBeDefined();
    const backup = await archiveBackupOf(store, key);
    const healthy = await checkIntegrityConfirmed(backup, store, {
      policy: DEFAULT_POLICY,
      history: new MemoryChecksumHistory(),
    });
    expect([healthy.status, ...codes(healthy)]).toEqual(['PASS']);
    expect(healthy.contentBytes).toBe(content.length);
    expect(store.reads).toBe(1);

    await writeTree(root, { [key]: flipBit(archive, archive.length - 6) });
    const damaged = new CountingStore(root);
    const result = await checkIntegrityConfirmed(backup, damaged, {
      policy: DEFAULT_POLICY,
      history: new MemoryChecksumHistory(),
    });
    expect(result.status).toBe('FAIL');
    expect(codes(result)).toEqual(expect.arrayContaining(['ARCHIVE_CORRUPT', 'CHECKSUM_MISMATCH']));
    expect(damaged.reads).toBe(2);
  });

  it('issue 10 (faults): without a reference, first-seen is recorded only when two reads agree', async () => {
    await writeTree(path.join(root, ...PREFIX.split('/')), { 'a.bin': file });
    const steady = new FaultyStore(root);
    const backup = await directoryBackupOf(steady, PREFIX);
    const history = new MemoryChecksumHistory();
    const first = await checkIntegrityConfirmed(backup, steady, { policy: DEFAULT_POLICY, history });
    expect([first.status, ...codes(first)]).toEqual(['WARN', 'NO_REFERENCE_CHECKSUM']);
    expect(steady.count(`${PREFIX}a.bin`)).toBe(2);
    expect((await history.firstSeenOf(backup.id)).map((r) => r.sha256)).toEqual([sha256Hex(file)]);
    // Once recorded, a healthy run reads it once and passes.
    const later = new FaultyStore(root);
    const again = await checkIntegrityConfirmed(backup, later, { policy: DEFAULT_POLICY, history });
    expect([again.status, ...codes(again)]).toEqual(['PASS']);
    expect(later.count(`${PREFIX}a.bin`)).toBe(1);

    const flaky = new FaultyStore(root, { [`${PREFIX}a.bin`]: 1 });
    const fresh = new MemoryChecksumHistory();
    const disagreed = await checkIntegrityConfirmed(backup, flaky, {
      policy: DEFAULT_POLICY,
      history: fresh,
    });
    expect([disagreed.status, ...codes(disagreed)]).toEqual([
      'FAIL',
      'CHECK_FAILED',
      'NO_REFERENCE_CHECKSUM',
    ]);
    expect(await fresh.firstSeenOf(backup.id)).toEqual([]);
    // Neither read is a yardstick for the restore either.
    expect(disagreed.objectSha256).toEqual({});
  });
});

describe('issue 10 (faults): honest outcomes when faults persist', () => {
  it('issue 10 (faults): a store fault after retries is CHECK_FAILED naming it; permissions stay ACCESS_DENIED', async () => {
    await writeTree(path.join(root, ...PREFIX.split('/')), {
      'a.bin': file,
      'b.bin': file,
      'c.bin': file,
      SHA256SUMS: sha256sums({ 'a.bin': file, 'b.bin': file, 'c.bin': file }),
    });
    const store = new FaultyStore(
      root,
      {},
      {
        [`${PREFIX}a.bin`]: 'unreachable',
        [`${PREFIX}b.bin`]: 'access-denied',
        [`${PREFIX}c.bin`]: 'changed',
      },
    );
    const backup = await directoryBackupOf(store, PREFIX);
    const history = new MemoryChecksumHistory();
    const result = await checkIntegrityConfirmed(backup, store, { policy: DEFAULT_POLICY, history });
    const byObject = Object.fromEntries(result.findings.map((f) => [f.object, f]));
    expect(byObject['a.bin']?.code).toBe('CHECK_FAILED');
    expect(byObject['a.bin']?.message).toMatch(/injected unreachable fault .*checked again next run/);
    expect(byObject['b.bin']?.code).toBe('ACCESS_DENIED');
    expect(byObject['c.bin']?.code).toBe('CHECK_FAILED');
    expect(result.status).toBe('FAIL');
    expect(await history.firstSeenOf(backup.id)).toEqual([]);
  });

  it('issue 10 (faults): a file rewritten between listing and reading is "changed since listing", not CHECKSUM_MISMATCH', async () => {
    const dir = path.join(root, ...PREFIX.split('/'));
    await writeTree(dir, { 'a.bin': file, SHA256SUMS: sha256sums({ 'a.bin': file }) });
    const store = new FaultyStore(root);
    const backup = await directoryBackupOf(store, PREFIX);
    await writeTree(dir, { 'a.bin': sampleBytes(41_000, 9) });
    const history = new MemoryChecksumHistory();
    const result = await checkIntegrityConfirmed(backup, store, { policy: DEFAULT_POLICY, history });
    expect([result.status, ...codes(result)]).toEqual(['FAIL', 'CHECK_FAILED']);
    expect(result.findings[0]?.message).toMatch(
      /changed since it was listed .*judged on its new content next run/,
    );
    expect(await history.firstSeenOf(backup.id)).toEqual([]);
    // Listed anew, it is judged on its new content: now that is damage.
    const next = await checkIntegrityConfirmed(await directoryBackupOf(store, PREFIX), store, {
      policy: DEFAULT_POLICY,
      history,
    });
    expect(codes(next)).toEqual(['CHECKSUM_MISMATCH']);
  });

  it('issue 10 (faults): an object in an archive tier (InvalidObjectState) is ARCHIVED_STORAGE; a restored Glacier object is read', async () => {
    await writeTree(path.join(root, ...PREFIX.split('/')), {
      'a.bin': file,
      SHA256SUMS: sha256sums({ 'a.bin': file }),
    });
    const tiered = new FaultyStore(root, {}, { [`${PREFIX}a.bin`]: 'archived' });
    const backup = await directoryBackupOf(tiered, PREFIX);
    const result = await checkIntegrityConfirmed(backup, tiered, { policy: DEFAULT_POLICY });
    expect([result.status, ...codes(result)]).toEqual(['WARN', 'ARCHIVED_STORAGE']);

    const store = new FaultyStore(root);
    const glacier = {
      ...backup,
      members: backup.members.map((m) => ({ ...m, storageClass: 'GLACIER' })),
    };
    const skipped = await checkIntegrityConfirmed(glacier, store, { policy: DEFAULT_POLICY });
    expect(codes(skipped)).toEqual(['ARCHIVED_STORAGE']);
    expect(store.count(`${PREFIX}a.bin`)).toBe(0);
    const restored = { ...glacier, members: glacier.members.map((m) => ({ ...m, restored: true })) };
    const read = await checkIntegrityConfirmed(restored, store, { policy: DEFAULT_POLICY });
    expect([read.status, ...codes(read)]).toEqual(['PASS']);
    expect(store.count(`${PREFIX}a.bin`)).toBe(1);
  });
});
