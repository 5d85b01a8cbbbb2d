/** An entry as its header block and the extended headers before it describe it together. */
import type { EntryMetadata } from './extended.ts';
import { cString, type TarEntryType } from './header.ts';

export interface ResolvedEntry {
  typeflag: string;
  name: string;
  linkTarget: string | undefined;
  /** Bytes stored in the archive after the header (pax `size` wins over the header's field). */
  stored: number;
  type: TarEntryType;
}

/** A NUL typeflag is an old regular file. */
export function typeflagOf(block: Buffer): string {
  return block[156] === 0 ? '0' : String.fromCharCode(block[156] as number);
}

/** Names, link target and size of an entry; why the header is unusable when it is. */
export function resolveEntry(
  block: Buffer,
  typeflag: string,
  size: number,
  metadata: EntryMetadata,
): ResolvedEntry | string {
  const ustar = block.toString('latin1', 257, 263) === 'ustar\0';
  let name = cString(block, 0, 100);
  if (ustar && block[345] !== 0) name = `${cString(block, 345, 155)}/${name}`;
  let linkTarget = block[157] === 0 ? undefined : cString(block, 157, 100);
  let stored = size;
  const { attributes } = metadata;
  if (metadata.longName !== undefined) name = metadata.longName;
  if (metadata.longLink !== undefined) linkTarget = metadata.longLink;
  const paxPath = attributes.get('path');
  if (paxPath !== undefined) name = paxPath;
  const paxLink = attributes.get('linkpath');
  if (paxLink !== undefined) linkTarget = paxLink;
  const paxSize = attributes.get('size');
  if (paxSize !== undefined) {
    const parsed = Number(paxSize);
    if (!Number.isSafeInteger(parsed) || parsed < 0) return `its pax size "${paxSize}" is not a number`;
    stored = parsed;
  }
  return { typeflag, name, linkTarget, stored, type: entryType(typeflag, name) };
}

function entryType(typeflag: string, name: string): TarEntryType {
  switch (typeflag) {
    case '0':
    case '7':
    case 'S':
      return name.endsWith('/') && typeflag === '0' ? 'directory' : 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '5':
    case 'D':
      return 'directory';
    default:
      return 'other';
  }
}
