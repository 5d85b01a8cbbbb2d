import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SAFE_RESTORE_LIMITS } from '../../lib/core/config.ts';
import { RestoreLimits } from '../../lib/core/restore/limits.ts';
import { SandboxTree } from '../../lib/core/restore/sandbox-tree.ts';
import { type Arena, makeArena } from '../support/hostile-archives.ts';

let arena: Arena;
beforeEach(async () => {
  arena = await makeArena('bv-tree-');
});
afterEach(async () => {
  await arena.cleanup();
});

describe('sandbox tree', () => {
  it('reads every file back from disk and reports one whose bytes differ from what was hashed while writing', async () => {
    const tree = new SandboxTree(arena.root);
    const limits = new RestoreLimits(SAFE_RESTORE_LIMITS);
    for (const name of ['a/one.txt', 'a/two.txt']) {
      const writer = tree.createFile(name, limits);
      writer.write(Buffer.from(`content of ${name}\n`));
      writer.end();
    }
    await tree.drain();
    expect(tree.verifyOnDisk()).toEqual([]);
    // What the writer hashed no longer matches the disk (as if storage flipped bits).
    const two = tree.files.get('a/two.txt');
    if (!two) throw new Error('a/two.txt was not recorded');
    two.sha256 = '0'.repeat(64);
    const mismatches = tree.verifyOnDisk();
    expect(mismatches.map((m) => m.file.path)).toEqual(['a/two.txt']);
    expect(mismatches[0]?.size).toBe(Buffer.byteLength('content of a/two.txt\n'));
  });

  it('writes chunks in order whatever their size, keeps trailing holes, and hashes what it wrote', async () => {
    const tree = new SandboxTree(arena.root);
    const limits = new RestoreLimits(SAFE_RESTORE_LIMITS);
    const writer = tree.createFile('sparse.bin', limits);
    const parts = [Buffer.from('head'), Buffer.alloc(64 * 1024), Buffer.from('middle'), Buffer.alloc(8192)];
    for (const part of parts) writer.write(part);
    const file = writer.end();
    await tree.drain();
    expect(readFileSync(path.join(arena.root, 'sparse.bin'))).toEqual(Buffer.concat(parts));
    expect(file.size).toBe(Buffer.concat(parts).length);
    expect(tree.verifyOnDisk()).toEqual([]);
  });

  it('regression: a file written in place that cannot be created fails the restore, never silently', async () => {
    const tree = new SandboxTree(arena.root);
    const limits = new RestoreLimits(SAFE_RESTORE_LIMITS);
    // Something outside this restore's knowledge already holds the name: O_EXCL refuses it.
    writeFileSync(path.join(arena.root, 'taken.txt'), 'not ours');
    const writer = tree.createFile('taken.txt', limits);
    writer.write(Buffer.from('restored content'));
    writer.end();
    await expect(tree.ready()).rejects.toThrow(/EEXIST/);
    expect(readFileSync(path.join(arena.root, 'taken.txt'), 'utf8')).toBe('not ours');
  });
});
