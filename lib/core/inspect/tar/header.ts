/** Tar header blocks: numeric fields, names, the checksum, and what an entry is. */

export const BLOCK = 512;

/** Extended headers (pax, GNU long names, sparse maps) are metadata: refuse absurd sizes. */
export const MAX_EXTENDED_HEADER_BYTES = 8 * 1024 * 1024;

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

export interface TarEntryHeader {
  path: string;
  type: TarEntryType;
  /** Size of the file as restored (the real size for sparse members). */
  size: number;
  linkTarget?: string;
  /** Byte offset of the entry's (first) header block in the tar stream. */
  headerOffset: number;
  sparse: boolean;
}

/** Receives the content of one regular file, already expanded when the member is sparse. */
export interface TarEntrySink {
  write(chunk: Buffer): void;
  end(): void;
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i += 8) {
    if (block.readBigUInt64LE(i) !== 0n) return false;
  }
  return true;
}

export function cString(block: Buffer, start: number, length: number): string {
  const end = block.indexOf(0, start);
  const stop = end === -1 || end > start + length ? start + length : end;
  return block.toString('utf8', start, stop);
}

/** Octal (space/NUL padded) or GNU base-256 numeric field; NaN when unreadable. */
export function numeric(block: Buffer, start: number, length: number): number {
  const first = block[start] as number;
  if (first & 0x80) {
    if (first & 0x40) return Number.NaN; // negative base-256: never a valid size
    let value = first & 0x3f;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + (block[i] as number);
    return value;
  }
  let i = start;
  const end = start + length;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let value = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = block[i] as number;
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37) return Number.NaN;
    value = value * 8 + (c - 0x30);
    digits++;
  }
  for (; i < end; i++) {
    const c = block[i] as number;
    if (c !== 0x20 && c !== 0) return Number.NaN;
  }
  return digits === 0 ? 0 : value;
}

export function checksumMatches(block: Buffer): boolean {
  const stored = numeric(block, 148, 8);
  if (Number.isNaN(stored)) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}
