import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { DEFAULT_POLICY, type Policy } from '../../lib/core/config.ts';
import type { RestoreResult } from '../../lib/core/model.ts';
import { restoreBackup } from '../../lib/core/restore/restore.ts';
import {
  type Arena,
  archiveBackup,
  gzipBombPlain,
  gzipBombTar,
  makeArena,
  manyEntriesTarGz,
  type RawEntry,
  rawTar,
  writeStream,
} from '../support/hostile-archives.ts';

let arena: Arena;
let before: string[];

beforeEach(async () => {
  arena = await makeArena();
  before = await arena.snapshot();
});

afterEach(async () => {
  await arena.cleanup();
});

function policy(restore: Partial<Policy['restore']> = {}): Policy {
  return { ...DEFAULT_POLICY, restore: { ...DEFAULT_POLICY.restore, ...restore } };
}

async function restoreKey(key: string, restorePolicy = policy()): Promise<RestoreResult> {
  return restoreBackup({
    backup: await archiveBackup(arena.store, key),
    store: new FolderStore(arena.store),
    root: arena.root,
    policy: restorePolicy,
    probes: [],
  });
}

async function restoreRaw(entries: RawEntry[], restorePolicy = policy()): Promise<RestoreResult> {
  await writeFile(path.join(arena.store, 'hostile.tar.gz'), zlib.gzipSync(rawTar(entries)));
  return restoreKey('hostile.tar.gz', restorePolicy);
}

async function expectContained(result: RestoreResult, code: string, aimedAt: string[]): Promise<void> {
  expect(result.status).toBe('FAIL');
  expect(result.findings.map((f) => f.code)).toContain(code);
  expect(await arena.snapshot()).toEqual(before);
  for (const target of aimedAt) expect(existsSync(target), `${target} must not exist`).toBe(false);
  // The sandbox was cleaned whatever happened.
  expect(await readdir(arena.root)).toEqual([]);
}

describe('hostile archives are refused and nothing lands outside the root', () => {
  it('refuses an entry climbing out with ../', async () => {
    const result = await restoreRaw([
      { name: 'ok.txt', body: 'fine\n' },
      { name: '../canary/pwned.txt', body: 'owned\n' },
    ]);
    await expectContained(result, 'UNSAFE_PATH', [path.join(arena.canary, 'pwned.txt')]);
    expect(result.findings[0]?.object).toBe('../canary/pwned.txt');
  });

  it('refuses an absolute path', async () => {
    const target = path.join(arena.base, 'absolute-pwned.txt');
    const result = await restoreRaw([{ name: target, body: 'owned\n' }]);
    await expectContained(result, 'UNSAFE_PATH', [target]);
  });

  it('refuses a file written through a symlink restored earlier (link inside the root)', async () => {
    const result = await restoreRaw([
      { name: 'real', type: 'directory' },
      { name: 'inner', type: 'symlink', linkname: 'real' },
      { name: 'inner/through.txt', body: 'via link\n' },
    ]);
    await expectContained(result, 'UNSAFE_PATH', []);
    expect(result.findings.find((f) => f.code === 'UNSAFE_PATH')?.message).toMatch(/symbolic link "inner"/);
  });

  it('refuses a symlink pointing out of the root, then a write through it', async () => {
    const result = await restoreRaw([
      { name: 'escape', type: 'symlink', linkname: '../canary' },
      { name: 'escape/pwned.txt', body: 'owned\n' },
    ]);
    await expectContained(result, 'UNSAFE_PATH', [path.join(arena.canary, 'pwned.txt')]);
  });

  it('refuses a file written through an absolute link restored earlier (a -> canary, then a/passwd)', async () => {
    const result = await restoreRaw([
      { name: 'a', type: 'symlink', linkname: arena.canary },
      { name: 'a/passwd', body: 'root::0:0::/:/bin/sh\n' },
    ]);
    await expectContained(result, 'UNSAFE_PATH', [path.join(arena.canary, 'passwd')]);
    expect(result.findings[0]?.object).toBe('a/passwd');
  });

  it('refuses a write through a chain of links that climbs out, though the links themselves are data', async () => {
    const result = await restoreRaw([
      { name: 'deep/deeper', type: 'directory' },
      { name: 'deep/deeper/up', type: 'symlink', linkname: '../..' },
      { name: 'sneak', type: 'symlink', linkname: 'deep/deeper/up/../canary' },
      { name: 'sneak/pwned.txt', body: 'owned\n' },
    ]);
    await expectContained(result, 'UNSAFE_PATH', [path.join(arena.canary, 'pwned.txt')]);
    expect(result.findings[0]?.object).toBe('sneak/pwned.txt');
  });

  it('refuses a hard link to /etc/hostname', async () => {
    const result = await restoreRaw([{ name: 'hostname', type: 'hardlink', linkname: '/etc/hostname' }]);
    await expectContained(result, 'UNSAFE_PATH', []);
  });

  it('refuses a hard link to a file that was not extracted earlier', async () => {
    const result = await restoreRaw([{ name: 'link', type: 'hardlink', linkname: 'never-extracted.txt' }]);
    await expectContained(result, 'UNSAFE_PATH', []);
  });

  it('refuses a hard link climbing out with ../', async () => {
    const result = await restoreRaw([{ name: 'x', type: 'hardlink', linkname: '../canary/canary.txt' }]);
    await expectContained(result, 'UNSAFE_PATH', []);
  });

  it('stops a header declaring a huge member before writing it', async () => {
    const result = await restoreRaw(
      [{ name: 'huge.bin', body: 'just a few bytes', declaredSize: 100 * 1024 ** 3 }],
      policy(),
    );
    await expectContained(result, 'DECOMPRESSION_LIMIT', []);
    expect(result.findings[0]?.message).toMatch(/declares 107374182400 bytes/);
    expect(result.bytesRestored).toBe(0);
  });

  it('stops a gzip bomb (2 GiB of zeros in a tar) early on the expansion ratio', async () => {
    await writeStream(path.join(arena.store, 'bomb.tar.gz'), gzipBombTar(2 * 1024 ** 3));
    const result = await restoreKey('bomb.tar.gz');
    await expectContained(result, 'DECOMPRESSION_LIMIT', []);
    expect(result.findings[0]?.message).toMatch(/expansion limit/);
    // Stopped long before the 2 GiB were written.
    expect(result.bytesRestored).toBeLessThan(256 * 1024 ** 2);
  });

  it('stops a plain .gz bomb on the restored-bytes limit', async () => {
    await writeStream(path.join(arena.store, 'zeros.bin.gz'), gzipBombPlain(64 * 1024 ** 2));
    const result = await restoreKey(
      'zeros.bin.gz',
      policy({ maxBytes: 8 * 1024 ** 2, maxExpansionRatio: 10_000 }),
    );
    await expectContained(result, 'DECOMPRESSION_LIMIT', []);
    expect(result.findings[0]?.message).toMatch(/8388608-byte limit/);
  });

  it('stops 50,000 entries at a 10,000-entry limit', async () => {
    await writeStream(path.join(arena.store, 'many.tar.gz'), manyEntriesTarGz(50_000));
    const result = await restoreKey('many.tar.gz', policy({ maxEntries: 10_000 }));
    await expectContained(result, 'DECOMPRESSION_LIMIT', []);
    expect(result.findings[0]?.message).toMatch(/more than 10000 entries/);
    // Ten thousand files reach the disk before the limit: seconds alone, a minute on a loaded machine.
  }, 300_000);

  it('reports a truncated archive, not a pass', async () => {
    const whole = zlib.gzipSync(rawTar([{ name: 'a.txt', body: 'x'.repeat(100_000) }]));
    await writeFile(path.join(arena.store, 'cut.tar'), zlib.gunzipSync(whole).subarray(0, 5000));
    const result = await restoreKey('cut.tar');
    expect(result.status).toBe('FAIL');
    expect(result.findings[0]?.code).toBe('ARCHIVE_TRUNCATED');
  });

  it('a link out of the root is recreated as a dangling link and never followed', async () => {
    const outside = path.join(arena.base, 'outside');
    await writeFile(
      path.join(arena.store, 'l.tar'),
      rawTar([{ name: 'escape', type: 'symlink', linkname: outside }]),
    );
    const result = await restoreBackup({
      backup: await archiveBackup(arena.store, 'l.tar'),
      store: new FolderStore(arena.store),
      root: arena.root,
      policy: policy(),
      probes: [],
      keep: true,
    });
    // Nothing but a link: no file content, so EMPTY_BACKUP, and no UNSAFE_PATH.
    expect(result.findings.map((f) => f.code)).toEqual(['NO_REFERENCE_CHECKSUM', 'EMPTY_BACKUP']);
    expect(lstatSync(path.join(arena.root, 'escape')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(path.join(arena.root, 'escape'))).toBe(outside);
    expect(existsSync(outside)).toBe(false);
    expect(await arena.snapshot()).toEqual(before);
  });
});
