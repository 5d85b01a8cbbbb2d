import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FolderStore, translateStreamErrors } from '../../lib/adapters/folder-store.ts';
import { StoreError } from '../../lib/core/errors.ts';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'bv-folder-store-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function writeTree(base: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [key, content] of Object.entries(files)) {
    const file = path.join(base, key);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
  }
}

async function listKeys(store: FolderStore): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of store.list()) keys.push(info.key);
  return keys;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function caught(promise: Promise<unknown>): Promise<StoreError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StoreError);
    return error as StoreError;
  }
  throw new Error('expected a StoreError, got success');
}

describe('FolderStore.list', () => {
  it('lists every regular file in plain code-unit key order, the order S3 lists in', async () => {
    // '-' (0x2d) and '.' (0x2e) sort before '/' (0x2f): a naive per-directory walk puts "a/b" first.
    await writeTree(root, {
      'a/b': '1',
      'a-c': '22',
      'a.txt': '333',
      a0: '4444',
      'a b': '5',
      B: '6',
      é: '7',
      'a/z/deep/file.tar.gz': '8',
      'a/y': '9',
    });
    const store = new FolderStore(root);
    const keys = await listKeys(store);
    expect(keys).toEqual(['B', 'a b', 'a-c', 'a.txt', 'a/b', 'a/y', 'a/z/deep/file.tar.gz', 'a0', 'é']);
    expect(keys).toEqual([...keys].sort());
  });

  it('issue 9.2: lists an empty folder as a `folder/` marker, in key order, as S3 lists a folder marker', async () => {
    await writeTree(root, { 'a/file': '1', 'b.txt': '2' });
    await mkdir(path.join(root, 'backups/20250626_000000/db'), { recursive: true });
    await mkdir(path.join(root, 'backups/20250626_000000/files'), { recursive: true });
    await mkdir(path.join(root, 'empty'), { recursive: true });
    const infos = [];
    for await (const info of new FolderStore(root).list()) infos.push(info);
    expect(infos.map((i) => i.key)).toEqual([
      'a/file',
      'b.txt',
      'backups/20250626_000000/db/',
      'backups/20250626_000000/files/',
      'empty/',
    ]);
    expect(infos.filter((i) => i.key.endsWith('/')).every((i) => i.size === 0)).toBe(true);
  });

  it('reports size and modification time of each file', async () => {
    await writeTree(root, { 'x/one.bin': Buffer.alloc(1234, 1), 'two.bin': '' });
    const mtime = new Date('2025-06-25T11:46:22Z');
    const { utimes } = await import('node:fs/promises');
    await utimes(path.join(root, 'x/one.bin'), mtime, mtime);
    const infos = [];
    for await (const info of new FolderStore(root).list()) infos.push(info);
    expect(infos).toEqual([
      { key: 'two.bin', size: 0, lastModified: expect.any(Date) },
      { key: 'x/one.bin', size: 1234, lastModified: mtime },
    ]);
  });

  it('lists more files than one stat batch in one folder, in order', async () => {
    const names = Array.from({ length: 700 }, (_, index) => `f-${(index * 7919) % 1000}.dat`);
    await writeTree(root, Object.fromEntries(names.map((name) => [name, name])));
    const keys = await listKeys(new FolderStore(root));
    expect(keys).toEqual([...new Set(names)].sort());
  });

  it('reads folders lazily: a file added ahead of the walk is seen, and the walk can stop early', async () => {
    await writeTree(root, { 'a/1': '', 'b/1': '', 'c/1': '', 'd/1': '' });
    const iterator = new FolderStore(root).list()[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.value?.key).toBe('a/1');
    // Not read yet: only the folders on the current path (and one sibling read ahead) are.
    await writeTree(root, { 'd/2': '' });
    await rm(path.join(root, 'c'), { recursive: true });
    const rest: string[] = [];
    for (let next = await iterator.next(); !next.done; next = await iterator.next())
      rest.push(next.value.key);
    expect(rest).toEqual(['b/1', 'd/1', 'd/2']);

    const early = new FolderStore(root).list()[Symbol.asyncIterator]();
    expect((await early.next()).value?.key).toBe('a/1');
    await rm(path.join(root, 'b'), { recursive: true });
    await expect(early.return?.()).resolves.toEqual({ done: true, value: undefined });
  });

  it('neither follows nor lists symlinks, so the walk never leaves the root', async () => {
    await writeTree(root, { 'real/file': 'data' });
    await symlink('/etc', path.join(root, 'etc-link'));
    await symlink(path.join(root, 'real/file'), path.join(root, 'real/file-link'));
    await symlink(path.join(root, 'nowhere'), path.join(root, 'dangling'));
    expect(await listKeys(new FolderStore(root))).toEqual(['real/file']);
  });

  it('throws not-found on the first iteration when the root is missing', async () => {
    const missing = path.join(root, 'nope');
    const store = new FolderStore(missing);
    const error = await caught(store.list()[Symbol.asyncIterator]().next());
    expect(error.kind).toBe('not-found');
    expect(error.message).toBe(`folder ${missing} does not exist: check the path`);
    expect(error.location).toBe(missing);
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('throws not-found when the root is a file', async () => {
    await writeTree(root, { file: 'x' });
    const error = await caught(
      new FolderStore(path.join(root, 'file')).list()[Symbol.asyncIterator]().next(),
    );
    expect(error.kind).toBe('not-found');
    expect(error.message).toContain('is not a folder');
  });

  it('reports permission denied on an unreadable folder and file (checked as an unprivileged user)', async () => {
    // Root ignores mode bits, so the check runs in a child process without privileges.
    await writeTree(root, { 'a-first': 'x', 'locked/inside': 'secret', 'sealed.bin': 'secret' });
    await chmod(path.join(root, 'locked'), 0o000);
    await chmod(path.join(root, 'sealed.bin'), 0o000);
    await chmod(root, 0o755);
    const script = path.join(root, 'probe.mjs');
    await writeFile(
      script,
      `const { FolderStore } = await import(process.argv[2]);
const store = new FolderStore(process.argv[3]);
const out = { keys: [] };
try { for await (const info of store.list()) out.keys.push(info.key); }
catch (error) { out.listError = { name: error.name, kind: error.kind, message: error.message }; }
try { await store.open('sealed.bin'); }
catch (error) { out.openError = { name: error.name, kind: error.kind, message: error.message }; }
process.stdout.write(JSON.stringify(out));
`,
    );
    const unprivileged = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', script, path.resolve('lib/adapters/folder-store.ts'), root],
      { ...unprivileged, cwd: process.cwd(), encoding: 'utf8' },
    );
    await chmod(path.join(root, 'locked'), 0o755);
    expect(child.stderr).toBe('');
    const out = JSON.parse(child.stdout);
    // probe.mjs lists too (it sits in the root); the walk stops at the folder it cannot read.
    expect(out.keys).toEqual(['a-first']);
    expect(out.listError).toEqual({
      name: 'StoreError',
      kind: 'access-denied',
      message: `cannot read folder ${path.join(root, 'locked')} (permission denied): run as a user who can read it`,
    });
    expect(out.openError).toMatchObject({ name: 'StoreError', kind: 'access-denied' });
    expect(out.openError.message).toContain(path.join(root, 'sealed.bin'));
  });
});

describe('FolderStore.open', () => {
  const content = randomBytes(3 * 1024 * 1024 + 17);
  const sha256 = createHash('sha256').update(content).digest('hex');

  it('streams the whole file, with the default and with odd-sized chunks', async () => {
    await writeTree(root, { 'dir/big.bin': content });
    const store = new FolderStore(root);
    const whole = await readAll(await store.open('dir/big.bin'));
    expect(createHash('sha256').update(whole).digest('hex')).toBe(sha256);
    const stream = await store.open('dir/big.bin', { highWaterMark: 7777 });
    const sizes = new Set<number>();
    const hash = createHash('sha256');
    for await (const chunk of stream) {
      sizes.add((chunk as Buffer).length);
      hash.update(chunk as Buffer);
    }
    expect(hash.digest('hex')).toBe(sha256);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(7777);
  });

  it('uses large reads by default', async () => {
    await writeTree(root, { 'big.bin': content });
    const stream = await new FolderStore(root).open('big.bin');
    expect(stream.readableHighWaterMark).toBe(1024 * 1024);
    stream.destroy();
  });

  it.each([['..'], ['../outside'], ['a/../../outside'], ['/etc/passwd'], [''], ['a//b']])(
    'refuses the key %j',
    async (key) => {
      const store = new FolderStore(root);
      const error = await caught(store.open(key));
      expect(error.message).toContain('refused key');
      expect(() => store.localPath(key)).toThrow(StoreError);
    },
  );

  it('refuses to read through symlinks, at the file or in a parent folder', async () => {
    await writeTree(root, { real: 'x' });
    await symlink('/etc', path.join(root, 'etc-link'));
    await symlink(path.join(root, 'real'), path.join(root, 'file-link'));
    const store = new FolderStore(root);
    const viaParent = await caught(store.open('etc-link/hostname'));
    expect(viaParent.kind).toBe('access-denied');
    expect(viaParent.message).toContain('outside folder');
    const viaFile = await caught(store.open('file-link'));
    expect(viaFile.kind).toBe('access-denied');
    expect(viaFile.message).toContain('symbolic link');
    expect((await caught(store.head('etc-link/hostname'))).kind).toBe('access-denied');
  });

  it('throws not-found for a missing file and for a folder', async () => {
    await writeTree(root, { 'dir/file': 'x' });
    const store = new FolderStore(root);
    const missing = await caught(store.open('dir/missing'));
    expect(missing.kind).toBe('not-found');
    expect(missing.message).toBe(`file ${path.join(root, 'dir/missing')} does not exist (in folder ${root})`);
    expect((await caught(store.open('dir'))).kind).toBe('not-found');
    expect((await caught(store.head('dir/missing'))).kind).toBe('not-found');
  });

  it('gives the local path and head of a file', async () => {
    await writeTree(root, { 'dir/file': 'hello' });
    const store = new FolderStore(root);
    expect(store.localPath('dir/file')).toBe(path.join(root, 'dir', 'file'));
    expect(await store.head('dir/file')).toEqual({
      key: 'dir/file',
      size: 5,
      lastModified: expect.any(Date),
    });
  });
});

describe('FolderStore.open with blocking reads of small files (as an integrity worker thread reads)', () => {
  const blocking = () => new FolderStore(root, { blockingReadsUpTo: 64 * 1024 });
  const listed = (size: number) => ({ listed: { size } });

  it('reads the whole file, and leaves a larger one to the stream', async () => {
    const small = randomBytes(40 * 1024 + 3);
    const large = randomBytes(64 * 1024 + 1);
    await writeTree(root, { 'dir/small.bin': small, 'dir/large.bin': large, 'empty.bin': '' });
    const store = blocking();
    expect((await readAll(await store.open('dir/small.bin', listed(small.length)))).equals(small)).toBe(true);
    expect((await readAll(await store.open('empty.bin', listed(0)))).length).toBe(0);
    const stream = await store.open('dir/large.bin', listed(large.length));
    expect(stream.readableHighWaterMark).toBe(1024 * 1024);
    expect((await readAll(stream)).equals(large)).toBe(true);
  });

  it('refuses to read through symlinks, at the file or in a parent folder, as the stream does', async () => {
    await writeTree(root, { real: 'x' });
    await symlink('/etc', path.join(root, 'etc-link'));
    await symlink(path.join(root, 'real'), path.join(root, 'file-link'));
    const store = blocking();
    const viaParent = await caught(store.open('etc-link/hostname', listed(1)));
    expect(viaParent.kind).toBe('access-denied');
    expect(viaParent.message).toContain('outside folder');
    const viaFile = await caught(store.open('file-link', listed(1)));
    expect(viaFile.kind).toBe('access-denied');
    expect(viaFile.message).toContain('symbolic link');
  });

  it('throws not-found for a missing file and for a folder, and changed for another size', async () => {
    await writeTree(root, { 'dir/file': 'hello' });
    const store = blocking();
    const missing = await caught(store.open('dir/missing', listed(5)));
    expect(missing.kind).toBe('not-found');
    expect(missing.message).toBe(`file ${path.join(root, 'dir/missing')} does not exist (in folder ${root})`);
    expect((await caught(store.open('dir', listed(0)))).kind).toBe('not-found');
    const grown = await caught(store.open('dir/file', listed(4)));
    expect(grown.kind).toBe('changed');
    expect(grown.message).toContain('it is 5 bytes now, 4 when listed');
  });
});

describe('translateStreamErrors', () => {
  it('turns an error raised mid-read into a StoreError that keeps the cause', async () => {
    const failure = Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
    const source = new Readable({
      read() {
        this.push(Buffer.from('partial'));
        this.destroy(failure);
      },
    });
    const output = translateStreamErrors(
      source,
      (cause) => new StoreError('cannot read x', 'io', 'x', { cause }),
    );
    const error = await caught(readAll(output));
    expect(error.kind).toBe('io');
    expect(error.cause).toBe(failure);
  });
});

describe('FolderStore.put', () => {
  it('creates parent folders and writes the content', async () => {
    const store = new FolderStore(root);
    await store.put('copies/2025/db.tar.gz', Readable.from([Buffer.from('abc'), Buffer.from('def')]), 6);
    expect(await readFile(path.join(root, 'copies/2025/db.tar.gz'), 'utf8')).toBe('abcdef');
    expect(await readdir(path.join(root, 'copies/2025'))).toEqual(['db.tar.gz']);
    expect(await store.copyFrom()).toBe(false);
  });

  it('is atomic: a body that fails midway leaves the old content and no partial file', async () => {
    await writeTree(root, { 'dir/backup.tar': 'old content' });
    const store = new FolderStore(root);
    async function* failing() {
      yield Buffer.alloc(100_000, 1);
      throw new Error('source connection reset');
    }
    const error = await caught(store.put('dir/backup.tar', Readable.from(failing()), 200_000));
    expect(error.kind).toBe('io');
    expect(await readFile(path.join(root, 'dir/backup.tar'), 'utf8')).toBe('old content');
    expect(await readdir(path.join(root, 'dir'))).toEqual(['backup.tar']);
  });

  it('refuses a body shorter or longer than announced, keeping no partial file', async () => {
    const store = new FolderStore(root);
    const short = await caught(store.put('a.bin', Readable.from([Buffer.from('1234')]), 5));
    expect(short.message).toContain('received 4 bytes, expected 5');
    const long = await caught(store.put('a.bin', Readable.from([Buffer.from('123456')]), 5));
    expect(long.kind).toBe('io');
    expect(await readdir(root)).toEqual([]);
  });

  it('replaces an existing file whole', async () => {
    await writeTree(root, { 'f.bin': 'a much longer old content' });
    const store = new FolderStore(root);
    await store.put('f.bin', Readable.from([Buffer.from('new')]), 3);
    expect(await readFile(path.join(root, 'f.bin'), 'utf8')).toBe('new');
    expect((await stat(path.join(root, 'f.bin'))).size).toBe(3);
  });

  it('refuses keys that would write outside the folder', async () => {
    const store = new FolderStore(path.join(root, 'target'));
    const error = await caught(store.put('../escape', Readable.from([Buffer.from('x')]), 1));
    expect(error.message).toContain('refused key');
    expect(await readdir(root)).toEqual([]);
  });
});
