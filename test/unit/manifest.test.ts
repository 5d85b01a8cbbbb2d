import { describe, expect, it } from 'vitest';
import { normalizeRelativePath, parseSha256Sums, parseSidecar } from '../../lib/core/manifest.ts';
import { sha256Hex } from '../support/archives.ts';

const A = sha256Hex('a');
const B = sha256Hex('b');

describe('parseSha256Sums', () => {
  it('reads text and binary mode lines, blank lines, comments and CRLF endings', () => {
    const text = `# made by sha256sum\n${A}  one.txt\r\n\n${B.toUpperCase()} *dir/two.bin\n   \n# end\n`;
    expect(parseSha256Sums(text)).toEqual({
      entries: [
        { path: 'one.txt', sha256: A, binary: false, line: 2 },
        { path: 'dir/two.bin', sha256: B, binary: true, line: 4 },
      ],
      errors: [],
    });
  });

  it('reads names with spaces, ./ prefixes, escaped names and the --tag form', () => {
    const text = [
      `${A}  ./a file with  spaces.txt`,
      `\\${B}  new\\nline\\\\name`,
      `SHA256 (tagged/file.txt) = ${A}`,
    ].join('\n');
    const { entries, errors } = parseSha256Sums(text);
    expect(errors).toEqual([]);
    expect(entries.map((e) => e.path)).toEqual([
      'a file with  spaces.txt',
      'new\nline\\name',
      'tagged/file.txt',
    ]);
  });

  it('reports each malformed line with its number and keeps the good ones', () => {
    const text = [
      `${A}  good.txt`,
      `${A.slice(0, 63)}  short.txt`,
      'not a checksum line',
      `${A} one-space.txt`,
      `${A}`,
      `${B}  ../escape.txt`,
      `${B}  good.txt`,
      `${B}  /abs.txt`,
    ].join('\n');
    const { entries, errors } = parseSha256Sums(text);
    expect(entries.map((e) => e.path)).toEqual(['good.txt']);
    expect(errors.map((e) => e.line)).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect(errors[0]?.message).toMatch(/63 hex digits/);
    expect(errors[1]?.message).toMatch(/64-digit hex/);
    expect(errors[2]?.message).toMatch(/two spaces/);
    expect(errors[3]?.message).toMatch(/not followed by a file name/);
    expect(errors[4]?.message).toMatch(/leaves the manifest's folder/);
    expect(errors[5]?.message).toMatch(/different checksum \(first on line 1\)/);
  });

  it('accepts the same line twice', () => {
    expect(parseSha256Sums(`${A}  x\n${A}  ./x\n`).entries).toHaveLength(1);
  });
});

describe('parseSidecar', () => {
  it('reads a bare checksum', () => {
    expect(parseSidecar(`${A.toUpperCase()}\n`, 'b.tar.gz')).toEqual({ ok: true, sha256: A });
  });
  it('reads one coreutils line naming the archive (with or without a folder)', () => {
    expect(parseSidecar(`${A}  b.tar.gz\n`, 'b.tar.gz')).toEqual({
      ok: true,
      sha256: A,
      namedPath: 'b.tar.gz',
    });
    expect(parseSidecar(`${A} */srv/backups/b.tar.gz`, 'x/b.tar.gz')).toMatchObject({ ok: true, sha256: A });
  });
  it('refuses a line naming another file, several lines, or no checksum', () => {
    expect(parseSidecar(`${A}  other.tar.gz`, 'b.tar.gz')).toEqual({
      ok: false,
      message: 'the sidecar names "other.tar.gz", not the archive "b.tar.gz"',
    });
    expect(parseSidecar(`${A}  b.tar.gz\n${B}  b.tar.gz\n`, 'b.tar.gz')).toMatchObject({ ok: false });
    expect(parseSidecar('\n', 'b.tar.gz')).toEqual({ ok: false, message: 'the sidecar is empty' });
    expect(parseSidecar('deadbeef', 'b.tar.gz')).toMatchObject({
      ok: false,
      message: expect.stringMatching(/8 hex digits/),
    });
  });
});

describe('normalizeRelativePath', () => {
  it('normalizes and refuses escapes', () => {
    expect(normalizeRelativePath('./a//b/./c')).toBe('a/b/c');
    expect(normalizeRelativePath('a/../b')).toBeUndefined();
    expect(normalizeRelativePath('/etc/passwd')).toBeUndefined();
    expect(normalizeRelativePath('./')).toBeUndefined();
  });
});
