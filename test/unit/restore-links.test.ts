import { createReadStream, existsSync, lstatSync, readlinkSync, symlinkSync, unlinkSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { archiveFormatOf } from '../../lib/core/compression.ts';
import { DEFAULT_POLICY, SAFE_RESTORE_LIMITS } from '../../lib/core/config.ts';
import { inspectArchive } from '../../lib/core/inspect/inspect-archive.ts';
import type { ContentDigest, RestoreResult } from '../../lib/core/model.ts';
import { RestoreLimits } from '../../lib/core/restore/limits.ts';
import { restoreBackup } from '../../lib/core/restore/restore.ts';
import { SandboxTree } from '../../lib/core/restore/sandbox-tree.ts';
import { type Arena, archiveBackup, makeArena, type RawEntry, rawTar } from '../support/hostile-archives.ts';

let arena: Arena;
let before: string[];
beforeEach(async () => {
  arena = await makeArena('bv-links-');
  before = await arena.snapshot();
});
afterEach(async () => {
  await arena.cleanup();
});

/** A system backup as `tar czf` of a server makes it: absolute and climbing links are ordinary data. */
function systemBackup(current: string): RawEntry[] {
  return [
    { name: 'etc/', type: 'directory' },
    { name: 'etc/hostname', body: 'web-1\n' },
    { name: 'etc/localtime', type: 'symlink', linkname: '/usr/share/zoneinfo/UTC' },
    // Followed, this would be the canary's text, which is not JSON: a probe through it would fail.
    { name: 'etc/app.json', type: 'symlink', linkname: path.join(arena.canary, 'canary.txt') },
    { name: 'releases/1/', type: 'directory' },
    { name: 'releases/1/app.txt', body: 'release 1\n' },
    { name: 'releases/1/app-copy.txt', type: 'hardlink', linkname: 'releases/1/app.txt' },
    { name: 'current', type: 'symlink', linkname: current },
    { name: 'releases/1/up', type: 'symlink', linkname: '../../..' },
  ];
}

async function store(name: string, entries: RawEntry[]): Promise<void> {
  await writeFile(path.join(arena.store, name), zlib.gzipSync(rawTar(entries)));
}

/** The digests the integrity pass records of an archive (links with their target text). */
async function integrityDigests(name: string): Promise<ContentDigest[]> {
  const digests: ContentDigest[] = [];
  const format = archiveFormatOf(name);
  if (!format) throw new Error(`no format for ${name}`);
  await inspectArchive(createReadStream(path.join(arena.store, name)), format, {
    onEntry: (digest) => digests.push(digest),
  });
  return digests;
}

async function restore(name: string, references: ContentDigest[]): Promise<RestoreResult> {
  return restoreBackup({
    backup: await archiveBackup(arena.store, name),
    store: new FolderStore(arena.store),
    root: arena.root,
    policy: DEFAULT_POLICY,
    // A probe on every file and every .json: links must never be handed to a probe.
    probes: [{ match: '*', command: 'test -f {file} && test ! -L {file}', timeoutSeconds: 30 }],
    references,
    keep: true,
  });
}

describe('symbolic links are data: recreated as links, never followed', () => {
  it('issue 9.13: absolute and climbing symbolic links of a healthy system backup are restored as links, PASS', async () => {
    await store('system.tar.gz', systemBackup('../releases/1'));
    const references = await integrityDigests('system.tar.gz');
    expect(references.filter((d) => d.type === 'symlink').map((d) => [d.path, d.linkTarget])).toContainEqual([
      'current',
      '../releases/1',
    ]);

    const result = await restore('system.tar.gz', references);

    // The archive has no sidecar: the one finding is that nothing vouches for its bytes.
    expect(result.findings.map((f) => f.code)).toEqual(['NO_REFERENCE_CHECKSUM']);
    expect(result.status).toBe('WARN');
    expect(result.filesRestored).toBe(3);
    const links: Array<[string, string]> = [
      ['etc/localtime', '/usr/share/zoneinfo/UTC'],
      ['etc/app.json', path.join(arena.canary, 'canary.txt')],
      ['current', '../releases/1'],
      ['releases/1/up', '../../..'],
    ];
    for (const [name, target] of links) {
      const onDisk = path.join(arena.root, name);
      expect(lstatSync(onDisk).isSymbolicLink(), name).toBe(true);
      expect(readlinkSync(onDisk), name).toBe(target);
    }
    expect(lstatSync(path.join(arena.root, 'releases/1/app-copy.txt')).nlink).toBe(2);
    // Nothing outside the root was touched: the canary folder and the arena are as they were.
    expect(await arena.snapshot()).toEqual(before);
    expect(await readdir(arena.canary)).toEqual(['canary.txt']);
  });

  it('issue 9.13: a link whose target text differs from the catalogue is RESTORE_MISMATCH, FAIL', async () => {
    await store('catalogued.tar.gz', systemBackup('../releases/1'));
    const references = await integrityDigests('catalogued.tar.gz');
    // The same backup, but `current` now points elsewhere.
    await store('changed.tar.gz', systemBackup('../releases/2'));

    const result = await restore('changed.tar.gz', references);

    expect(result.status).toBe('FAIL');
    expect(result.findings.map((f) => [f.code, f.object])).toEqual([
      ['NO_REFERENCE_CHECKSUM', 'changed.tar.gz'],
      ['RESTORE_MISMATCH', 'current'],
    ]);
    expect(result.findings.find((f) => f.code === 'RESTORE_MISMATCH')?.message).toMatch(
      /symbolic link "current" restored pointing at "\.\.\/releases\/2"; the integrity pass read "\.\.\/releases\/1"/,
    );
    expect(readlinkSync(path.join(arena.root, 'current'))).toBe('../releases/2');
    expect(await arena.snapshot()).toEqual(before);
  });

  it('issue 9.13: a link missing from the restore, or one more than the catalogue, is RESTORE_MISMATCH', async () => {
    const entries = systemBackup('../releases/1');
    await store('catalogued.tar.gz', entries);
    const references = await integrityDigests('catalogued.tar.gz');
    await store(
      'fewer.tar.gz',
      entries.filter((e) => e.name !== 'etc/localtime'),
    );
    const result = await restore('fewer.tar.gz', references);
    expect(result.status).toBe('FAIL');
    const messages = result.findings.filter((f) => f.code === 'RESTORE_MISMATCH').map((f) => f.message);
    expect(messages).toContainEqual(
      expect.stringMatching(
        /"etc\/localtime" is listed in the integrity pass but was not restored as a link/,
      ),
    );
    expect(messages).toContainEqual(
      expect.stringMatching(/3 symbolic links restored, the integrity pass read 4/),
    );
  });

  it('issue 9.13: a link read back from disk is checked with lstat and readlink, never followed', async () => {
    const tree = new SandboxTree(arena.root);
    const limits = new RestoreLimits(SAFE_RESTORE_LIMITS);
    const writer = tree.createFile('releases/1/app.txt', limits);
    writer.write(Buffer.from('release 1\n'));
    writer.end();
    tree.makeSymlink('current', '../releases/1');
    tree.makeSymlink('etc-localtime', '/usr/share/zoneinfo/UTC');
    await tree.drain();
    expect(tree.verifyLinksOnDisk()).toEqual([]);
    // The storage (or anything else) swaps one link for another and removes the other.
    unlinkSync(path.join(arena.root, 'current'));
    symlinkSync('../releases/2', path.join(arena.root, 'current'));
    unlinkSync(path.join(arena.root, 'etc-localtime'));
    expect(tree.verifyLinksOnDisk()).toEqual([
      { path: 'current', target: '../releases/1', found: '../releases/2' },
      { path: 'etc-localtime', target: '/usr/share/zoneinfo/UTC' },
    ]);
    expect(existsSync(path.join(arena.root, 'releases/1/app.txt'))).toBe(true);
  });
});
