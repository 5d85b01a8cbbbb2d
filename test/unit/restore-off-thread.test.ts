import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SAFE_RESTORE_LIMITS } from '../../lib/core/config.ts';
import type { RestoredFile } from '../../lib/core/restore/file-writer.ts';
import { RestoreLimits } from '../../lib/core/restore/limits.ts';
import { runBuiltinProbe } from '../../lib/core/restore/probes.ts';
import { READ_BACK_SLICE } from '../../lib/core/restore/read-back.ts';
import { SandboxTree } from '../../lib/core/restore/sandbox-tree.ts';
import { type Arena, makeArena } from '../support/hostile-archives.ts';

let arena: Arena;
beforeEach(async () => {
  arena = await makeArena('bv-off-thread-');
});
afterEach(async () => {
  await arena.cleanup();
});

/** Counts timer callbacks (what a heartbeat is) while `work` runs. */
async function ticksDuring<T>(work: () => Promise<T>): Promise<{ ticks: number; value: T }> {
  let ticks = 0;
  const timer = setInterval(() => {
    ticks += 1;
  }, 1);
  try {
    const value = await work();
    return { ticks, value };
  } finally {
    clearInterval(timer);
  }
}

describe('long checks leave the event loop free (heartbeats never starve)', () => {
  it('issue 10: SQLite integrity_check of a large database runs off the main thread while timers keep firing', async () => {
    const file = path.join(arena.root, 'big.db');
    const db = new Database(file);
    db.exec(
      'PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b BLOB); CREATE INDEX t_a ON t(a);',
    );
    db.exec(
      'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) INSERT INTO t (a, b) SELECT hex(randomblob(16)), randomblob(200) FROM n;',
    );
    db.close();
    const size = statSync(file).size;
    expect(size).toBeGreaterThan(25 * 1024 * 1024);

    const { ticks, value } = await ticksDuring(() => runBuiltinProbe('sqlite', file, size));

    expect(value).toBeUndefined();
    expect(ticks).toBeGreaterThanOrEqual(3);
  });

  it('issue 10: reading back a file larger than a slice happens in a worker, timers keep firing, damage is still found', async () => {
    const tree = new SandboxTree(arena.root);
    const limits = new RestoreLimits(SAFE_RESTORE_LIMITS);
    const chunk = Buffer.alloc(1024 * 1024, 0x5a);
    const writer = tree.createFile('large.bin', limits);
    const chunks = (3 * READ_BACK_SLICE) / chunk.length;
    for (let i = 0; i < chunks; i++) writer.write(chunk);
    writer.end();
    await tree.drain();

    const healthy = await ticksDuring(() => tree.verifyOnDisk());
    expect(healthy.value).toEqual([]);
    expect(healthy.ticks).toBeGreaterThanOrEqual(3);

    // One byte changed on disk far into the file: the worker's read-back must see it.
    const fd = openSync(path.join(arena.root, 'large.bin'), 'r+');
    writeSync(fd, Buffer.from([0x00]), 0, 1, 2 * READ_BACK_SLICE + 12345);
    closeSync(fd);
    const fresh = new SandboxTree(arena.root);
    // A new tree knows the file as written; read back afresh.
    fresh.files.set('large.bin', tree.files.get('large.bin') as RestoredFile);
    const damaged = await fresh.verifyOnDisk();
    expect(damaged.map((m) => [m.file.path, m.size])).toEqual([['large.bin', 3 * READ_BACK_SLICE]]);
    expect(damaged[0]?.crc32).not.toBe(damaged[0]?.file.crc32);
  });

  it('issue 13: a large file is read back in the worker during the extraction; damage is found, a replaced file is read again', async () => {
    const tree = new SandboxTree(arena.root);
    const limits = new RestoreLimits(SAFE_RESTORE_LIMITS);
    const chunk = Buffer.alloc(1024 * 1024, 0x33);
    const write = (name: string, change?: () => void) => {
      const writer = tree.createFile(name, limits);
      for (let i = 0; i <= READ_BACK_SLICE / chunk.length; i++) writer.write(chunk);
      change?.();
      // Closing it starts its read-back in the worker.
      writer.end();
    };
    // The storage changes one byte of the file (written in place) before it is closed and read back.
    write('damaged.bin', () => {
      const fd = openSync(path.join(arena.root, 'damaged.bin'), 'r+');
      writeSync(fd, Buffer.from([0x00]), 0, 1, READ_BACK_SLICE - 7);
      closeSync(fd);
    });
    write('replaced.bin');
    await tree.drain();
    // A later entry of the same name replaces a file whose read-back may be in flight.
    const again = tree.createFile('replaced.bin', limits);
    again.write(Buffer.from('small now\n'));
    again.end();
    await tree.drain();
    const mismatches = await tree.verifyOnDisk();
    expect(mismatches.map((m) => [m.file.path, m.size])).toEqual([
      ['damaged.bin', READ_BACK_SLICE + chunk.length],
    ]);
    expect(tree.files.get('replaced.bin')?.size).toBe(10);
  });
});
