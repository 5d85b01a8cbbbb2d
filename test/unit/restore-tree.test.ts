import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
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
  it('reads every file back from disk and reports one whose bytes differ from what was written', async () => {
    const tree = new SandboxTree(arena.root);
    const limits = new RestoreLimits(SAFE_RESTORE_LIMITS);
    for (const name of ['a/one.txt', 'a/two.txt']) {
      const writer = tree.createFile(name, limits);
      writer.write(Buffer.from(`content of ${name}\n`));
      writer.end();
    }
    // The storage flips one bit of a closed file before it is read back.
    const onDisk = path.join(arena.root, 'a', 'two.txt');
    const bytes = readFileSync(onDisk);
    bytes[3] = (bytes[3] as number) ^ 0x04;
    writeFileSync(onDisk, bytes);
    await tree.drain();
    const mismatches = await tree.verifyOnDisk();
    expect(mismatches.map((m) => m.file.path)).toEqual(['a/two.txt']);
    expect(mismatches[0]?.size).toBe(Buffer.byteLength('content of a/two.txt\n'));
    expect(mismatches[0]?.crc32).not.toBe(mismatches[0]?.file.crc32);
  });

  it('reports a file cut short on disk, and a hard link whose file changed', async () => {
    const tree = new SandboxTree(arena.root);
    const limits = new RestoreLimits(SAFE_RESTORE_LIMITS);
    const writer = tree.createFile('data.bin', limits);
    writer.write(randomBytes(100_000));
    writer.end();
    truncateSync(path.join(arena.root, 'data.bin'), 99_999);
    tree.makeHardlink('link.bin', 'data.bin');
    await tree.drain();
    const mismatches = await tree.verifyOnDisk();
    expect(mismatches.map((m) => [m.file.path, m.size])).toEqual([
      ['data.bin', 99_999],
      ['link.bin', 99_999],
    ]);
  });

  it('writes a file whole and in odd-sized chunks, and a later entry of the same name replaces it', async () => {
    const content = Buffer.concat([randomBytes(300_000), Buffer.alloc(200_000), randomBytes(123_457)]);
    for (const chunkSize of [content.length, 65_536, 70_001, 4_093]) {
      const tree = new SandboxTree(path.join(arena.root, `c${chunkSize}`));
      mkdirSync(tree.root);
      const limits = new RestoreLimits(SAFE_RESTORE_LIMITS);
      const writer = tree.createFile('big.bin', limits);
      for (let at = 0; at < content.length; at += chunkSize) {
        writer.write(content.subarray(at, at + chunkSize));
        await tree.ready();
      }
      const file = writer.end();
      const again = tree.createFile('big.bin', limits);
      again.write(content.subarray(0, 150_000));
      again.end();
      await tree.drain();
      expect(file.sha256).toBe(createHash('sha256').update(content).digest('hex'));
      expect(readFileSync(path.join(tree.root, 'big.bin'))).toEqual(content.subarray(0, 150_000));
      expect(await tree.verifyOnDisk()).toEqual([]);
    }
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
    expect(await tree.verifyOnDisk()).toEqual([]);
  });

  it('regression: a hard link made while its file is queued, then the file replaced, keeps the content it linked', async () => {
    const tree = new SandboxTree(arena.root);
    const limits = new RestoreLimits(SAFE_RESTORE_LIMITS);
    const versions = ['first\n', 'second\n', 'third\n'];
    for (const [n, text] of versions.entries()) {
      const writer = tree.createFile('x.txt', limits);
      writer.write(Buffer.from(text));
      writer.end();
      // The second version is written through the pool (its path was queued): the link waits for it.
      if (n === 1) tree.makeHardlink('linked.txt', 'x.txt');
    }
    await tree.drain();
    expect(readFileSync(path.join(arena.root, 'linked.txt'), 'utf8')).toBe('second\n');
    expect(readFileSync(path.join(arena.root, 'x.txt'), 'utf8')).toBe('third\n');
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
