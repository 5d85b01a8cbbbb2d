/**
 * How a sparse member starts: its map read from an old GNU header and its extension blocks,
 * from pax records (0.0, 0.1), or from the start of its data (pax 1.0). Each step returns
 * what the parser does next; the parser keeps the states.
 */
import type { ResolvedEntry } from './entry.ts';
import type { EntryMetadata } from './extended.ts';
import { BLOCK, MAX_EXTENDED_HEADER_BYTES, numeric, type TarEntryHeader } from './header.ts';
import { checkSegments, readMapList, SparseMap, SparseMapReader, TOO_MANY_SEGMENTS } from './sparse.ts';

/** An old GNU sparse member whose header announced extension blocks. */
export interface PendingGnuSparse {
  header: TarEntryHeader;
  segments: SparseMap;
  stored: number;
  realSize: number;
  full: boolean;
}

/** A pax 1.0 sparse member waiting for its map at the start of its data. */
export interface PendingSparseMap {
  header: TarEntryHeader;
  realSize: number;
  stored: number;
  reader: SparseMapReader;
  mapBytes: number;
  headerBlock: number;
}

export type SparseStep =
  /** Damage: report it (at `offset`, else the header block) and skip `skip` bytes if given. */
  | { kind: 'corrupt'; why: string; member?: string; offset?: number; skip?: number }
  /** The map is known and valid: the member's `stored` bytes follow. */
  | { kind: 'start'; header: TarEntryHeader; segments: SparseMap; stored: number; realSize: number }
  | { kind: 'extension'; pending: PendingGnuSparse }
  | { kind: 'map'; pending: PendingSparseMap };

/** A map checked against the real size: the member starts, or its data is skipped as damage. */
function checked(header: TarEntryHeader, segments: SparseMap, stored: number, realSize: number): SparseStep {
  const invalid = checkSegments(segments, realSize);
  if (invalid !== undefined) return { kind: 'corrupt', why: invalid, member: header.path, skip: stored };
  return { kind: 'start', header: { ...header, size: realSize }, segments, stored, realSize };
}

/** Old GNU 'S' header: up to four runs in the header block, more in extension blocks after it. */
export function gnuSparse(block: Buffer, entry: ResolvedEntry, headerOffset: number): SparseStep {
  const segments = new SparseMap();
  for (let i = 0; i < 4; i++) {
    const at = 386 + i * 24;
    if (block[at] === 0) break;
    segments.push(numeric(block, at, 12), numeric(block, at + 12, 12));
  }
  const realSize = numeric(block, 483, 12);
  const header: TarEntryHeader = {
    path: entry.name,
    type: 'file',
    size: realSize,
    headerOffset,
    sparse: true,
  };
  if (block[482] !== 0) {
    return { kind: 'extension', pending: { header, segments, stored: entry.stored, realSize, full: false } };
  }
  return checked(header, segments, entry.stored, realSize);
}

/** One old GNU extension block; undefined while more follow. */
export function gnuSparseExtension(pending: PendingGnuSparse, block: Buffer): SparseStep | undefined {
  for (let i = 0; i < 21 && !pending.full; i++) {
    const at = i * 24;
    if (block[at] === 0) break;
    pending.full = !pending.segments.push(numeric(block, at, 12), numeric(block, at + 12, 12));
  }
  if (block[504] !== 0) return undefined;
  if (pending.full) {
    return { kind: 'corrupt', why: TOO_MANY_SEGMENTS, member: pending.header.path, skip: pending.stored };
  }
  return checked(pending.header, pending.segments, pending.stored, pending.realSize);
}

/** Whether pax GNU.sparse.* records make a regular file a sparse member. */
export function isPaxSparse(attributes: Map<string, string>): boolean {
  return (
    attributes.has('GNU.sparse.major') ||
    attributes.has('GNU.sparse.size') ||
    attributes.has('GNU.sparse.map') ||
    attributes.has('GNU.sparse.offset')
  );
}

/** The name a pax sparse member restores to (GNU.sparse.name, else the header's). */
export function paxSparseName(entry: ResolvedEntry, metadata: EntryMetadata): string {
  return metadata.attributes.get('GNU.sparse.name') ?? entry.name;
}

/** pax sparse 0.0 (runs in records), 0.1 (a map record) and 1.0 (the map leads the data). */
export function paxSparse(
  entry: ResolvedEntry,
  metadata: EntryMetadata,
  headerOffset: number,
  blockOffset: number,
): SparseStep {
  const { attributes, pax } = metadata;
  const name = paxSparseName(entry, metadata);
  const realSize = Number(attributes.get('GNU.sparse.realsize') ?? attributes.get('GNU.sparse.size'));
  const header: TarEntryHeader = { path: name, type: 'file', size: realSize, headerOffset, sparse: true };
  if (!Number.isSafeInteger(realSize) || realSize < 0) {
    return { kind: 'corrupt', why: 'its pax sparse size is missing or not a number' };
  }
  if (attributes.get('GNU.sparse.major') === '1') {
    return {
      kind: 'map',
      pending: {
        header,
        realSize,
        stored: entry.stored,
        reader: new SparseMapReader(),
        mapBytes: 0,
        headerBlock: blockOffset,
      },
    };
  }
  let segments = new SparseMap();
  let tooMany = false;
  const map = attributes.get('GNU.sparse.map');
  if (map !== undefined) tooMany = !readMapList(map, segments);
  else if (pax?.runs) {
    segments = pax.runs;
    tooMany = pax.runsError !== undefined;
  }
  if (tooMany) return { kind: 'corrupt', why: TOO_MANY_SEGMENTS, member: name, skip: entry.stored };
  return checked(header, segments, entry.stored, realSize);
}

/** One more block of a pax 1.0 map; undefined while the map goes on. */
export function sparseMapBlock(
  pending: PendingSparseMap,
  block: Buffer,
  blockOffset: number,
): SparseStep | undefined {
  pending.mapBytes += BLOCK;
  const read = pending.reader.feed(block);
  if (read === 'more' && pending.mapBytes < pending.stored && pending.mapBytes < MAX_EXTENDED_HEADER_BYTES)
    return undefined;
  const rest = Math.max(0, pending.stored - pending.mapBytes);
  const invalid =
    read === 'done'
      ? checkSegments(pending.reader.map, pending.realSize)
      : read === 'more'
        ? 'its sparse map is unreadable'
        : read;
  if (invalid !== undefined) {
    return {
      kind: 'corrupt',
      why: invalid,
      member: pending.header.path,
      offset: read === 'more' ? pending.headerBlock : blockOffset,
      skip: rest,
    };
  }
  return {
    kind: 'start',
    header: pending.header,
    segments: pending.reader.map,
    stored: rest,
    realSize: pending.realSize,
  };
}
