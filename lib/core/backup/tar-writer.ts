/**
 * POSIX.1-2001 (pax) tar headers: a ustar header, preceded by a pax extended header whenever
 * ustar cannot say something exactly (a path over 100 bytes or not ASCII, a size of 8 GiB or
 * more, a long link target). What GNU tar `--format=pax` writes, and what lib/core/inspect reads.
 */

export const BLOCK = 512;
/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

export type TarEntryType = 'file' | 'directory' | 'symlink';

export interface TarHeader {
  path: string;
  type: TarEntryType;
  size: number;
  mode: number;
  mtime: Date;
  uid?: number;
  gid?: number;
  linkpath?: string;
}

const TYPE_FLAG: Record<TarEntryType, string> = { file: '0', directory: '5', symlink: '2' };
const MAX_OCTAL_11 = 0o77777777777;

/** Zero bytes that bring `size` up to a whole block. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

function octal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'latin1');
}

function isPlainAscii(text: string): boolean {
  return /^[\x20-\x7e]*$/.test(text);
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length++;
  return `${length}${body}`;
}

function ustar(header: TarHeader, name: string, type: string, size: number, linkname = ''): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  octal(block, 100, 8, header.mode & 0o7777);
  octal(block, 108, 8, Math.min(header.uid ?? 0, 0o7777777));
  octal(block, 116, 8, Math.min(header.gid ?? 0, 0o7777777));
  octal(block, 124, 12, size <= MAX_OCTAL_11 ? size : 0);
  octal(block, 136, 12, Math.max(0, Math.min(Math.floor(header.mtime.getTime() / 1000), MAX_OCTAL_11)));
  block.write(type, 156, 1, 'latin1');
  block.write(linkname, 157, 100, 'utf8');
  block.write('ustar\0', 257, 6, 'latin1');
  block.write('00', 263, 2, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

/** The header blocks of one entry (its data, then `padding(size)`, follow). */
export function encodeHeader(header: TarHeader): Buffer {
  const path = header.type === 'directory' && !header.path.endsWith('/') ? `${header.path}/` : header.path;
  const size = header.type === 'file' ? header.size : 0;
  const linkpath = header.linkpath ?? '';
  const records: string[] = [];
  if (Buffer.byteLength(path) > 100 || !isPlainAscii(path)) records.push(paxRecord('path', path));
  if (size > MAX_OCTAL_11) records.push(paxRecord('size', String(size)));
  if (Buffer.byteLength(linkpath) > 100 || !isPlainAscii(linkpath))
    records.push(paxRecord('linkpath', linkpath));
  const main = ustar(header, asciiName(path), TYPE_FLAG[header.type], size, asciiName(linkpath));
  if (records.length === 0) return main;
  const data = Buffer.from(records.join(''), 'utf8');
  const base = path.replace(/\/$/, '').split('/').pop() ?? '';
  const paxName = `PaxHeaders/${asciiName(base)}`.slice(0, 100);
  const pax = ustar({ ...header, mode: 0o644 }, paxName, 'x', data.length);
  return Buffer.concat([pax, data, padding(data.length), main]);
}

/** A stand-in for the ustar field when the pax header carries the real value. */
function asciiName(text: string): string {
  const ascii = text.replace(/[^\x20-\x7e]/g, '_');
  return ascii.length <= 100 ? ascii : ascii.slice(ascii.length - 100);
}
