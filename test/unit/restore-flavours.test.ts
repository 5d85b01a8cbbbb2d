import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { link, mkdir, open, readdir, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { DEFAULT_POLICY } from '../../lib/core/config.ts';
import { checkIntegrity } from '../../lib/core/integrity.ts';
import type { Backup, ContentDigest } from '../../lib/core/model.ts';
import type { ObjectStore } from '../../lib/core/ports.ts';
import { type RestoreRequest, restoreBackup } from '../../lib/core/restore/restore.ts';
import { type Arena, archiveBackup, directoryBackup, makeArena } from '../support/hostile-archives.ts';
import { zstd } from '../support/zstd.ts';

let arena: Arena;
beforeEach(async () => {
  arena = await makeArena();
});
afterEach(async () => {
  await arena.cleanup();
});

const LONG_DIR = `${'d'.repeat(60)}/${'e'.repeat(60)}`;
const LONG_NAME = `${'n'.repeat(120)}.txt`;

/** Restores a backup of the arena's store into its root: default policy, no custom probes. */
function restoreFromArena(backup: Backup, extra: Partial<RestoreRequest> = {}) {
  return restoreBackup({
    backup,
    store: new FolderStore(arena.store),
    root: arena.root,
    policy: DEFAULT_POLICY,
    probes: [],
    ...extra,
  });
}

/** A source tree with what tar formats disagree on: long names, links, a sparse file. */
async function makeTree(dir: string, { longNames, sparse }: { longNames: boolean; sparse: boolean }) {
  await mkdir(path.join(dir, 'sub/inner'), { recursive: true });
  await writeFile(path.join(dir, 'hello.txt'), 'hello\n');
  await writeFile(
    path.join(dir, 'sub/inner/data.bin'),
    Buffer.from(Array.from({ length: 70_001 }, (_, i) => i % 251)),
  );
  await writeFile(path.join(dir, 'empty.txt'), '');
  await symlink('../hello.txt', path.join(dir, 'sub/hello-link'));
  await link(path.join(dir, 'hello.txt'), path.join(dir, 'hello-hard.txt'));
  if (longNames) {
    await mkdir(path.join(dir, LONG_DIR), { recursive: true });
    await writeFile(path.join(dir, LONG_DIR, LONG_NAME), 'long\n');
  }
  if (sparse) {
    const handle = await open(path.join(dir, 'sparse.img'), 'w');
    await handle.write(Buffer.from('start'), 0, 5, 0);
    await handle.write(Buffer.from('middle'), 0, 6, 3 * 1024 * 1024);
    await handle.write(Buffer.from('end'), 0, 3, 9 * 1024 * 1024 - 3);
    await handle.close();
  }
}

function hashTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of execFileSync('ls', ['-A', path.join(dir, rel)])
      .toString()
      .split('\n')
      .filter(Boolean)) {
      const relative = rel ? `${rel}/${name}` : name;
      const full = path.join(dir, relative);
      const info = lstatSync(full);
      if (info.isSymbolicLink()) out[relative] = `-> ${readlinkSync(full)}`;
      else if (info.isDirectory()) walk(relative);
      else out[relative] = createHash('sha256').update(readFileSync(full)).digest('hex');
    }
  };
  walk('');
  return out;
}

const FLAVOURS = [
  { format: 'ustar', longNames: false, sparse: false },
  { format: 'v7', longNames: false, sparse: false },
  { format: 'gnu', longNames: true, sparse: true },
  { format: 'oldgnu', longNames: true, sparse: true },
  { format: 'pax', longNames: true, sparse: true },
] as const;

describe('every tar flavour GNU tar writes restores byte for byte', () => {
  for (const flavour of FLAVOURS) {
    it(`--format=${flavour.format}${flavour.sparse ? ' with a sparse member' : ''}${flavour.longNames ? ' and long names' : ''}`, async () => {
      const source = path.join(arena.base, 'source');
      await makeTree(source, flavour);
      const archive = path.join(arena.store, `backup-${flavour.format}.tar.gz`);
      execFileSync('tar', [
        `--format=${flavour.format}`,
        ...(flavour.sparse ? ['--sparse'] : []),
        '-czf',
        archive,
        '-C',
        source,
        '.',
      ]);
      const result = await restoreFromArena(await archiveBackup(arena.store, path.basename(archive)), {
        keep: true,
      });
      // Restored alone, with no sidecar or manifest: what the integrity pass would say too.
      expect(result.findings.map((f) => f.code)).toEqual(['NO_REFERENCE_CHECKSUM']);
      expect(result.status).toBe('WARN');
      expect(hashTree(arena.root)).toEqual(hashTree(source));
      const hard = statSync(path.join(arena.root, 'hello-hard.txt'));
      expect(hard.ino).toBe(statSync(path.join(arena.root, 'hello.txt')).ino);
      expect(lstatSync(path.join(arena.root, 'sub/hello-link')).isSymbolicLink()).toBe(true);
      if (flavour.sparse) {
        // Holes stay holes: far fewer blocks than the 9 MiB logical size.
        expect(statSync(path.join(arena.root, 'sparse.img')).blocks * 512).toBeLessThan(1024 * 1024);
      }
      expect(result.filesRestored).toBe(
        Object.values(hashTree(source)).filter((v) => !v.startsWith('->')).length,
      );
    });
  }
});

/** A store whose objects arrive in odd-sized chunks, as a network would deliver them. */
class ChunkingStore implements ObjectStore {
  constructor(
    private readonly inner: ObjectStore,
    private readonly size: number,
  ) {}
  get url() {
    return this.inner.url;
  }
  list() {
    return this.inner.list();
  }
  head(key: string) {
    return this.inner.head(key);
  }
  async open(key: string) {
    const whole = await this.inner.open(key);
    const size = this.size;
    return Readable.from(
      (async function* () {
        for await (const chunk of whole) {
          for (let at = 0; at < (chunk as Buffer).length; at += size)
            yield (chunk as Buffer).subarray(at, at + size);
        }
      })(),
    );
  }
}

describe('verification against references', () => {
  async function tarWithSums(files: Record<string, string>, sums: Record<string, string>) {
    const source = path.join(arena.base, 'src');
    await mkdir(source, { recursive: true });
    for (const [name, body] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(source, name)), { recursive: true });
      await writeFile(path.join(source, name), body);
    }
    const lines = Object.entries(sums).map(
      ([name, body]) => `${createHash('sha256').update(body).digest('hex')}  ${name}`,
    );
    await writeFile(path.join(source, 'SHA256SUMS'), `${lines.join('\n')}\n`);
    execFileSync('tar', ['-czf', path.join(arena.store, 'b.tar.gz'), '-C', source, '.']);
    return archiveBackup(arena.store, 'b.tar.gz');
  }

  it('passes when the SHA256SUMS at the tar root matches, in odd-sized chunks too', async () => {
    const backup = await tarWithSums(
      { 'a.txt': 'alpha\n', 'dir/b.txt': 'beta\n' },
      { 'a.txt': 'alpha\n', './dir/b.txt': 'beta\n' },
    );
    for (const chunk of [undefined, 1, 511, 7919]) {
      const store = new FolderStore(arena.store);
      const result = await restoreBackup({
        backup,
        store: chunk ? new ChunkingStore(store, chunk) : store,
        root: arena.root,
        policy: DEFAULT_POLICY,
        probes: [],
      });
      expect(result.status, `chunk ${chunk}`).toBe('PASS');
      expect(result.filesRestored).toBe(3);
    }
  });

  it('fails with CHECKSUM_MISMATCH and MISSING_OBJECT, as the integrity pass does, when files differ from the SHA256SUMS inside the archive', async () => {
    const backup = await tarWithSums(
      { 'a.txt': 'alpha\n', 'b.txt': 'beta\n' },
      { 'a.txt': 'alpha\n', 'b.txt': 'BETA\n', 'gone.txt': 'x' },
    );
    const result = await restoreFromArena(backup);
    expect(result.status).toBe('FAIL');
    expect(result.findings.map((f) => [f.code, f.object])).toEqual([
      ['CHECKSUM_MISMATCH', 'b.txt'],
      ['MISSING_OBJECT', 'gone.txt'],
    ]);
  });

  it('compares with the digests the integrity pass recorded, count included', async () => {
    const backup = await tarWithSums({ 'a.txt': 'alpha\n' }, {});
    const digest = (p: string, body: string): ContentDigest => ({
      path: p,
      size: Buffer.byteLength(body),
      sha256: createHash('sha256').update(body).digest('hex'),
      type: 'file',
    });
    const sumsBody = readFileSync(path.join(arena.base, 'src/SHA256SUMS'), 'utf8');
    const good = [
      digest('./a.txt', 'alpha\n'),
      digest('./SHA256SUMS', sumsBody),
      { path: './', size: 0, sha256: '', type: 'directory' as const },
    ];
    const ok = await restoreFromArena(backup, { references: good });
    // Its SHA256SUMS lists nothing: a.txt is unlisted and nothing vouches for the archive, as integrity says.
    expect(ok.findings.map((f) => f.code)).toEqual(['UNLISTED_OBJECT', 'NO_REFERENCE_CHECKSUM']);
    const bad = [
      digest('./a.txt', 'other\n'),
      digest('./SHA256SUMS', sumsBody),
      digest('./missing.txt', 'm'),
    ];
    const failed = await restoreFromArena(backup, { references: bad });
    expect(failed.status).toBe('FAIL');
    const messages = failed.findings.map((f) => f.message).join('\n');
    expect(messages).toMatch(
      /"a.txt" restored with 6 bytes; the integrity pass says 6|restored with SHA-256/,
    );
    expect(messages).toMatch(/"missing.txt" is listed in the integrity pass but was not restored/);
    expect(messages).toMatch(/2 files restored, the integrity pass read 3/);
  });

  it('restores a directory backup object by object and checks its SHA256SUMS', async () => {
    const prefix = 'backups/20250625_114622/';
    const dir = path.join(arena.store, prefix);
    await mkdir(path.join(dir, 'db'), { recursive: true });
    await writeFile(path.join(dir, 'notes.txt'), 'notes\n');
    await writeFile(path.join(dir, 'db/dump.json'), '{"rows":[1,2,3]}');
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    await writeFile(path.join(dir, 'SHA256SUMS'), `${sha('notes.txt changed')}  notes.txt\n`);
    await writeFile(path.join(dir, 'db/SHA256SUMS'), `${sha('{"rows":[1,2,3]}')}  dump.json\n`);
    const backup = await directoryBackup(arena.store, prefix);
    const result = await restoreFromArena(backup);
    expect(result.filesRestored).toBe(2);
    expect(result.findings.map((f) => [f.code, f.object])).toEqual([['CHECKSUM_MISMATCH', 'notes.txt']]);
    await writeFile(path.join(dir, 'SHA256SUMS'), `${sha('notes\n')}  notes.txt\n`);
    const fixed = await restoreFromArena(backup);
    expect(fixed.status).toBe('PASS');
    expect(await readdir(arena.root)).toEqual([]);
  });

  it('restores a plain .gz of a non-tar file as that single file', async () => {
    const gz = zlib.gzipSync(
      '-- PostgreSQL database dump\n\nSELECT 1;\n\n-- PostgreSQL database dump complete\n',
    );
    await writeFile(path.join(arena.store, 'dump-20250101.sql.gz'), gz);
    await writeFile(
      path.join(arena.store, 'dump-20250101.sql.gz.sha256'),
      `${createHash('sha256').update(gz).digest('hex')}  dump-20250101.sql.gz\n`,
    );
    const backup = await archiveBackup(arena.store, 'dump-20250101.sql.gz');
    const result = await restoreFromArena(
      { ...backup, sidecarKey: 'dump-20250101.sql.gz.sha256' },
      { keep: true },
    );
    expect(result.findings).toEqual([]);
    expect(result.status).toBe('PASS');
    expect(readFileSync(path.join(arena.root, 'dump-20250101.sql'), 'utf8')).toMatch(/SELECT 1/);
  });

  it('reports RTO_EXCEEDED as a warning when the restore is slower than the RTO', async () => {
    await writeFile(
      path.join(arena.store, 'a.tar'),
      execFileSync('tar', ['-cf', '-', '-C', arena.canary, '.']),
    );
    const result = await restoreBackup({
      backup: await archiveBackup(arena.store, 'a.tar'),
      store: new FolderStore(arena.store),
      root: arena.root,
      // An RTO of a few microseconds: any real restore misses it.
      policy: { ...DEFAULT_POLICY, rtoMinutes: 1e-9 },
      probes: [],
    });
    expect(result.status).toBe('WARN');
    expect(result.findings.map((f) => f.code)).toEqual(['NO_REFERENCE_CHECKSUM', 'RTO_EXCEEDED']);
  });
});

describe('zstd', () => {
  it('issue 9.14: a clean .tar.zst passes integrity and restore on Node 20', async () => {
    const source = path.join(arena.base, 'zsrc');
    await makeTree(source, { longNames: true, sparse: false });
    const tarFile = path.join(arena.base, 'z.tar');
    execFileSync('tar', ['--format=pax', '-cf', tarFile, '-C', source, '.']);
    await writeFile(path.join(arena.store, 'vol.tar.zst'), await zstd(readFileSync(tarFile), { level: 19 }));
    const backup = await archiveBackup(arena.store, 'vol.tar.zst');

    const integrity = await checkIntegrity(backup, new FolderStore(arena.store), { policy: DEFAULT_POLICY });
    // No sidecar and no manifest: nothing to compare with, but the archive itself read cleanly.
    expect(integrity.findings.map((f) => f.code)).toEqual(['NO_REFERENCE_CHECKSUM']);
    expect(integrity.files).toBe(5);

    const result = await restoreFromArena(backup, { keep: true });
    expect(result.findings.map((f) => f.code)).toEqual(['NO_REFERENCE_CHECKSUM']);
    expect(result.status).toBe('WARN');
    expect(hashTree(arena.root)).toEqual(hashTree(source));
  });

  it('restores a .tar.zst of several frames, and fails a truncated or damaged one as such', async () => {
    const source = path.join(arena.base, 'zsrc');
    await makeTree(source, { longNames: false, sparse: false });
    const tar = execFileSync('tar', ['--format=gnu', '-cf', '-', '-C', source, '.']);
    const whole = await zstd(tar);
    await writeFile(path.join(arena.store, 'cut.tar.zst'), whole.subarray(0, whole.length - 20));
    const cut = await restoreFromArena(await archiveBackup(arena.store, 'cut.tar.zst'));
    expect(cut.status).toBe('FAIL');
    expect(cut.findings.map((f) => f.code)).toEqual(['ARCHIVE_TRUNCATED']);

    const damaged = Buffer.from(whole);
    const at = Math.floor(damaged.length / 2);
    damaged[at] = (damaged[at] as number) ^ 0x10;
    await writeFile(path.join(arena.store, 'bad.tar.zst'), damaged);
    const bad = await restoreFromArena(await archiveBackup(arena.store, 'bad.tar.zst'));
    expect(bad.status).toBe('FAIL');
    expect(bad.findings.map((f) => f.code)).toEqual(['ARCHIVE_CORRUPT']);

    const half = Math.floor(tar.length / 2);
    const frames = Buffer.concat([await zstd(tar.subarray(0, half)), await zstd(tar.subarray(half))]);
    await writeFile(path.join(arena.store, 'frames.tar.zst'), frames);
    // Last: it keeps its tree for the comparison.
    const clean = await restoreFromArena(await archiveBackup(arena.store, 'frames.tar.zst'), { keep: true });
    expect(clean.findings.map((f) => f.code)).toEqual(['NO_REFERENCE_CHECKSUM']);
    expect(hashTree(arena.root)).toEqual(hashTree(source));
  });
});

describe('a restore that proves nothing is never a pass', () => {
  it('regression: an archive of empty files and folders restores into nothing and fails with EMPTY_BACKUP', async () => {
    const source = path.join(arena.base, 'hollow');
    await mkdir(path.join(source, 'data/db'), { recursive: true });
    await writeFile(path.join(source, 'data/db/dump.sql'), '');
    execFileSync('tar', ['-czf', path.join(arena.store, 'hollow.tar.gz'), '-C', source, '.']);
    const result = await restoreFromArena(await archiveBackup(arena.store, 'hollow.tar.gz'));
    expect(result.status).toBe('FAIL');
    expect(result.findings.map((f) => f.code)).toEqual(['NO_REFERENCE_CHECKSUM', 'EMPTY_BACKUP']);
    expect(result.findings[1]?.message).toMatch(/no file content \(1 files, 0 bytes\)/);
  });

  it('an archive deleted between listing and restore is MISSING_OBJECT', async () => {
    const source = path.join(arena.base, 'src');
    await mkdir(source, { recursive: true });
    await writeFile(path.join(source, 'a.txt'), 'alpha\n');
    execFileSync('tar', ['-czf', path.join(arena.store, 'gone.tar.gz'), '-C', source, '.']);
    const backup = await archiveBackup(arena.store, 'gone.tar.gz');
    await unlink(path.join(arena.store, 'gone.tar.gz'));
    const result = await restoreFromArena(backup);
    expect(result.status).toBe('FAIL');
    expect(result.findings.map((f) => f.code)).toEqual(['MISSING_OBJECT']);
    expect(result.findings[0]?.message).toMatch(/gone from the store since it was listed/);
  });
});
