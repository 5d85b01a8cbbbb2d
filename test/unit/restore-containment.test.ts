import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RestoreAbort } from '../../lib/core/restore/abort.ts';
import {
  checkLinkTarget,
  containedPath,
  parentsOf,
  printable,
  refuseRoot,
  refuseThroughLink,
  resolveUnder,
} from '../../lib/core/restore/containment.ts';

const ROOT = path.resolve('/srv/sandbox/root');

function refusal(run: () => unknown): { code: string; message: string } | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(RestoreAbort);
    const abort = error as RestoreAbort;
    return { code: abort.code, message: abort.message };
  }
}

/** Names an archive may carry that must never leave the root: refused, never rewritten. */
const REFUSED: Array<[name: string, raw: string, why: RegExp]> = [
  ['parent', '..', /contains "\.\."/],
  ['parent with slash', '../', /contains "\.\."/],
  ['climbing after a folder', 'a/../../b', /contains "\.\."/],
  ['climbing back inside', 'a/../b', /contains "\.\."/],
  ['dot then parent', './../etc/passwd', /contains "\.\."/],
  ['parent at the end', 'a/b/..', /contains "\.\."/],
  ['parent between doubled slashes', 'a//..//b', /contains "\.\."/],
  ['absolute', '/etc/passwd', /absolute path/],
  ['absolute root', '/', /absolute path/],
  ['doubled root', '//etc/passwd', /absolute path/],
  ['drive letter, backslash', 'C:\\x', /absolute path/],
  ['drive letter, slash', 'c:/Windows/win.ini', /absolute path/],
  ['UNC share', '\\\\server\\share', /absolute path/],
  ['NUL byte', 'a\0b', /NUL byte/],
  ['NUL byte hiding a climb', 'ok.txt\0/../../x', /NUL byte/],
  ['NUL byte alone', '\0', /NUL byte/],
];

/** Names that are odd but stay below the root: normalised to a name inside it. */
const CONTAINED: Array<[name: string, raw: string, relative: string]> = [
  ['plain', 'a/b.txt', 'a/b.txt'],
  ['leading dot slash', './a', 'a'],
  ['dot slash alone is the root', './', ''],
  ['dot alone is the root', '.', ''],
  ['empty is the root', '', ''],
  ['trailing slash', 'a/b/', 'a/b'],
  ['doubled slashes and dots', './a//./b///c', 'a/b/c'],
  ['dots in a name are not a parent', '...', '...'],
  ['a name starting with two dots', '..hidden', '..hidden'],
  ['a name ending with two dots', 'file..', 'file..'],
  ['backslashes are part of a Linux name', 'a\\..\\..\\b', 'a\\..\\..\\b'],
  ['drive letter without a separator is a name', 'C:x', 'C:x'],
  ['one leading backslash is a name', '\\etc', '\\etc'],
  ['two-dot leader (U+2025) is not ".."', '\u2025/x', '\u2025/x'],
  ['fullwidth dots are not ".."', '\uff0e\uff0e/x', '\uff0e\uff0e/x'],
  ['one-dot leaders are not ".."', '\u2024\u2024/x', '\u2024\u2024/x'],
  ['fullwidth solidus is not a separator', '..\uff0fetc', '..\uff0fetc'],
  ['right-to-left override stays in the name', 'a\u202egnp.exe', 'a\u202egnp.exe'],
  ['zero-width space after dots', '..\u200b/x', '..\u200b/x'],
  ['combining mark after dots', '..\u0301/x', '..\u0301/x'],
  ['a very long name', `${'d/'.repeat(2000)}${'x'.repeat(5000)}`, `${'d/'.repeat(2000)}${'x'.repeat(5000)}`],
];

describe('containment: the path rules of a restore', () => {
  it.each(REFUSED)('refuses %s (%j) as UNSAFE_PATH, naming it printably', (_name, raw, why) => {
    const refused = refusal(() => containedPath(raw));
    expect(refused?.code).toBe('UNSAFE_PATH');
    expect(refused?.message).toMatch(why);
    expect(refused?.message).not.toContain('\0');
  });

  it.each(CONTAINED)('keeps %s (%j) below the root', (_name, raw, relative) => {
    expect(containedPath(raw)).toBe(relative);
    const absolute = resolveUnder(ROOT, relative);
    expect(absolute === ROOT || absolute.startsWith(`${ROOT}${path.sep}`)).toBe(true);
  });

  it('names the kind of entry refused', () => {
    expect(refusal(() => containedPath('../x', 'hard link target of "a"'))?.message).toMatch(
      /^hard link target of "a" "\.\.\/x" contains "\.\."/,
    );
  });

  it('checks the resolved path again: a name that was not normalised cannot climb out', () => {
    for (const raw of ['..', '../x', 'a/../../x']) {
      expect(refusal(() => resolveUnder(ROOT, raw))?.code).toBe('UNSAFE_PATH');
    }
    expect(refusal(() => resolveUnder(ROOT, `../${path.basename(ROOT)}-sibling/x`))?.code).toBe(
      'UNSAFE_PATH',
    );
    expect(resolveUnder(ROOT, '')).toBe(ROOT);
    expect(resolveUnder(ROOT, 'a/b')).toBe(path.join(ROOT, 'a', 'b'));
  });

  it('lists the folders a name needs, outermost first', () => {
    expect(parentsOf('a/b/c.txt')).toEqual(['a', 'a/b']);
    expect(parentsOf('top.txt')).toEqual([]);
  });

  it('never writes through a link restored earlier, at any depth', () => {
    const links = new Set(['a/link']);
    const isLink = (prefix: string) => links.has(prefix);
    expect(refusal(() => refuseThroughLink('a/link/passwd', isLink))).toEqual({
      code: 'UNSAFE_PATH',
      message:
        '"a/link/passwd" would be written through the symbolic link "a/link" restored earlier: refused',
    });
    expect(refusal(() => refuseThroughLink('a/link/deep/x', isLink))?.code).toBe('UNSAFE_PATH');
    // The link itself, a sibling and a name that only starts like it are not written through it.
    for (const relative of ['a/link', 'a/linked/x', 'a/other/x', 'b/link/x']) {
      expect(refusal(() => refuseThroughLink(relative, isLink))).toBeUndefined();
    }
  });

  it('refuses a file or link that names the root itself', () => {
    expect(refusal(() => refuseRoot('', 'a file entry'))?.message).toBe(
      'a file entry names the restore root itself: refused',
    );
    expect(refusal(() => refuseRoot('', 'a symbolic link'))?.code).toBe('UNSAFE_PATH');
    expect(refusal(() => refuseRoot('x', 'a file entry'))).toBeUndefined();
  });

  it('keeps link targets as data: absolute and climbing targets stay, empty and NUL targets are refused', () => {
    for (const target of ['/usr/share/zoneinfo/UTC', '../../../etc/passwd', 'C:\\x', 'sibling', '\u2025/x']) {
      expect(refusal(() => checkLinkTarget('l', target))).toBeUndefined();
    }
    expect(refusal(() => checkLinkTarget('l', ''))?.code).toBe('UNSAFE_PATH');
    const nul = refusal(() => checkLinkTarget('l', 'a\0b'));
    expect(nul?.code).toBe('UNSAFE_PATH');
    expect(nul?.message).toContain('a\\x00b');
  });

  it('shows control characters escaped in messages', () => {
    expect(printable('a\0b\nc\u007f')).toBe('a\\x00b\\x0ac\\x7f');
    expect(printable('plain/ünïcode')).toBe('plain/ünïcode');
  });
});
