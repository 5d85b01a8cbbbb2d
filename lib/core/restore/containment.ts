import path from 'node:path';
import { RestoreAbort } from './abort.ts';

/**
 * The path rules of a restore, pure (no file system), as node-tar's unpacker keeps them:
 * - a name is normalised (`./a//b/` -> `a/b`); NUL bytes, absolute names (`/x`, `C:\x`, `C:/x`,
 *   `\\server\share`) and `..` components are refused, never rewritten into something else;
 * - the resolved path is checked again to stay below the root, whatever the name gave;
 * - nothing is written through a symbolic link this restore made (the file system side, a link
 *   already on disk, is checked by SandboxTree with lstat);
 * - a link's target is data, kept as its text (absolute or climbing targets included) and never
 *   followed: only an empty target or one with a NUL byte is refused.
 * On Linux a backslash is an ordinary character of a file name: `a\..\b` is one name, kept as is.
 */

/** `./a//b/` -> `a/b`; '' for the root itself. Throws UNSAFE_PATH for NUL bytes, absolute or climbing names. */
export function containedPath(raw: string, what = 'entry'): string {
  if (raw.includes('\0')) {
    throw new RestoreAbort('UNSAFE_PATH', `${what} "${printable(raw)}" contains a NUL byte: refused`, raw);
  }
  if (isAbsoluteName(raw)) {
    throw new RestoreAbort(
      'UNSAFE_PATH',
      `${what} "${printable(raw)}" is an absolute path: refused, nothing is written outside the restore root`,
      raw,
    );
  }
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      throw new RestoreAbort(
        'UNSAFE_PATH',
        `${what} "${printable(raw)}" contains "..": refused, nothing is written outside the restore root`,
        raw,
      );
    }
    parts.push(part);
  }
  return parts.join('/');
}

/** A POSIX root, a drive letter root or a UNC share: absolute on some system that may read the backup. */
export function isAbsoluteName(raw: string): boolean {
  return raw.startsWith('/') || /^[A-Za-z]:[\\/]/.test(raw) || raw.startsWith('\\\\');
}

/** The absolute path of a contained name below `root` (already resolved); checked again after joining. */
export function resolveUnder(root: string, relative: string): string {
  const absolute = path.join(root, ...relative.split('/'));
  if (absolute !== root && !absolute.startsWith(`${root}${path.sep}`)) {
    throw new RestoreAbort(
      'UNSAFE_PATH',
      `"${relative}" resolves outside the restore root: refused`,
      relative,
    );
  }
  return absolute;
}

/** The folders a contained name needs, outermost first: `a/b/c` -> `a`, `a/b`. */
export function parentsOf(relative: string): string[] {
  const parts = relative.split('/');
  const parents: string[] = [];
  let prefix = '';
  for (let i = 0; i < parts.length - 1; i++) {
    prefix = prefix === '' ? (parts[i] as string) : `${prefix}/${parts[i]}`;
    parents.push(prefix);
  }
  return parents;
}

/** Refuses writing `relative` below a symbolic link restored earlier (`isLink` of one of its parents). */
export function refuseThroughLink(relative: string, isLink: (prefix: string) => boolean): void {
  for (const prefix of parentsOf(relative)) {
    if (isLink(prefix)) {
      throw new RestoreAbort(
        'UNSAFE_PATH',
        `"${relative}" would be written through the symbolic link "${prefix}" restored earlier: refused`,
        relative,
      );
    }
  }
}

/** An entry that names the root itself (`.`, `./`, ``) cannot be a file or a link. */
export function refuseRoot(relative: string, what: 'a file entry' | 'a symbolic link'): void {
  if (relative === '') {
    throw new RestoreAbort('UNSAFE_PATH', `${what} names the restore root itself: refused`, relative);
  }
}

/** A link target is kept as text and never followed; it must only be a usable target. */
export function checkLinkTarget(relative: string, target: string): void {
  if (target === '' || target.includes('\0')) {
    throw new RestoreAbort(
      'UNSAFE_PATH',
      `symbolic link "${relative}" -> "${printable(target)}" has an empty or invalid target: refused`,
      relative,
    );
  }
}

/** A name as it can be shown in a message: control characters escaped. */
export function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is being escaped
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
