import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { emptyFolder, removeUnprobed } from '../../lib/core/restore/sandbox-root.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'bv-cleanup-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function make(files: string[]): void {
  for (const file of files) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), file);
  }
}

function listed(folder = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(root, folder), { withFileTypes: true })) {
    const relative = folder === '' ? entry.name : `${folder}/${entry.name}`;
    out.push(relative);
    if (entry.isDirectory() && !entry.isSymbolicLink()) out.push(...listed(relative));
  }
  return out.sort();
}

describe('the sandbox clean-up beside the probes', () => {
  it('removes what no built-in probe reads, keeping each probed file with its whole folder', async () => {
    make([
      'SHA256SUMS',
      'app/a.rec',
      'app/deep/b.rec',
      'db/app.sqlite',
      'db/app.sqlite-wal',
      'db/old/archive.bin',
      'srv/data/dump.sql',
      'srv/data/notes.txt',
      'srv/logs/x.log',
      'volumes/blob.img',
    ]);
    symlinkSync('/etc/passwd', path.join(root, 'link'));
    await removeUnprobed(root, ['db/app.sqlite', 'srv/data/dump.sql']);
    expect(listed()).toEqual([
      'db',
      'db/app.sqlite',
      'db/app.sqlite-wal',
      'db/old',
      'db/old/archive.bin',
      'srv',
      'srv/data',
      'srv/data/dump.sql',
      'srv/data/notes.txt',
    ]);
    await emptyFolder(root);
    expect(readdirSync(root)).toEqual([]);
  });

  it('keeps everything when a probed file lies at the root, removes everything when none is probed', async () => {
    make(['top.json', 'a/b.txt']);
    await removeUnprobed(root, ['top.json']);
    expect(listed()).toEqual(['a', 'a/b.txt', 'top.json']);
    await removeUnprobed(root, []);
    expect(readdirSync(root)).toEqual([]);
  });

  it('never rejects: a root that is gone leaves the rest to emptyFolder', async () => {
    await expect(removeUnprobed(path.join(root, 'missing'), ['x/y'])).resolves.toBeUndefined();
    await expect(emptyFolder(path.join(root, 'missing'))).resolves.toBeUndefined();
  });
});
