/** Sparse members: their maps (old GNU, pax 0.0, 0.1 and 1.0) and the expansion of holes. */
import type { TarEntrySink } from './header.ts';

/** Holes are hashed as zeros; past this a sparse map is taken for damage, not data. */
const MAX_SPARSE_REAL_SIZE = 2 ** 40;

/**
 * Data runs of one sparse member. Real sparse files have a few thousand at most; an 8 MiB
 * pax 1.0 map could declare two million. Kept as 16 bytes a run, so at most 16 MiB.
 */
export const MAX_SPARSE_SEGMENTS = 1_000_000;

/** A sparse member's data runs (offset, length), 16 bytes each. */
export class SparseMap {
  private runs = new Float64Array(32);
  count = 0;

  /** False when the map already holds MAX_SPARSE_SEGMENTS runs. */
  push(offset: number, length: number): boolean {
    if (this.count >= MAX_SPARSE_SEGMENTS) return false;
    if (this.count * 2 + 2 > this.runs.length) {
      const bigger = new Float64Array(Math.min(this.runs.length * 2, MAX_SPARSE_SEGMENTS * 2));
      bigger.set(this.runs);
      this.runs = bigger;
    }
    this.runs[this.count * 2] = offset;
    this.runs[this.count * 2 + 1] = length;
    this.count++;
    return true;
  }

  offset(i: number): number {
    return this.runs[i * 2] as number;
  }

  length(i: number): number {
    return this.runs[i * 2 + 1] as number;
  }
}

export const TOO_MANY_SEGMENTS = `its sparse map has more than ${MAX_SPARSE_SEGMENTS} data runs`;

const ZERO_CHUNK = Buffer.alloc(64 * 1024);

/**
 * pax sparse 0.1: `offset,size,offset,size,...` in one record, read without splitting it (an
 * 8 MiB record would make millions of strings). A field that is not decimal reads as NaN, which
 * the map check refuses. False when the map holds more runs than the cap.
 */
export function readMapList(map: string, segments: SparseMap): boolean {
  let value = 0;
  let digits = 0;
  let pendingOffset: number | undefined;
  for (let i = 0; i <= map.length; i++) {
    const c = i === map.length ? 0x2c : map.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      value = digits > 16 ? Number.NaN : value * 10 + (c - 0x30);
      digits++;
      continue;
    }
    const field = c === 0x2c && digits > 0 ? value : Number.NaN;
    value = 0;
    digits = 0;
    if (pendingOffset === undefined) pendingOffset = field;
    else {
      if (!segments.push(pendingOffset, field)) return false;
      pendingOffset = undefined;
    }
  }
  return true;
}

/** Why a sparse map cannot describe a file of `realSize` bytes, or undefined when it can. */
export function checkSegments(map: SparseMap, realSize: number): string | undefined {
  let position = 0;
  for (let i = 0; i < map.count; i++) {
    const offset = map.offset(i);
    const length = map.length(i);
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < position ||
      length < 0 ||
      offset + length > realSize
    ) {
      return `sparse map entry ${offset}+${length} is out of order or beyond the file's size ${realSize}`;
    }
    position = offset + length;
  }
  if (realSize > MAX_SPARSE_REAL_SIZE) return `sparse member claims an implausible size of ${realSize} bytes`;
  return undefined;
}

/**
 * pax sparse 1.0: the map leads the member's data as decimal lines (the count, then offset
 * and size pairs), padded to a block. Read as the blocks arrive, each byte once.
 */
export class SparseMapReader {
  readonly map = new SparseMap();
  /** Map bytes examined so far. */
  scanned = 0;
  private value = 0;
  private digits = 0;
  /** Numbers still to read after the count; -1 until the count is read. */
  private expected = -1;
  private pendingOffset = -1;

  /** 'more': the map goes on in the next block; 'done': it is complete; else why it is unreadable. */
  feed(block: Buffer): 'more' | 'done' | string {
    for (let i = 0; i < block.length; i++) {
      this.scanned++;
      const c = block[i] as number;
      if (c >= 0x30 && c <= 0x39) {
        // 16 digits already reach past 2^53: a longer number is no offset or size.
        if (this.digits === 16) return 'its sparse map is unreadable (a number is too long)';
        this.value = this.value * 10 + (c - 0x30);
        this.digits++;
        continue;
      }
      if (c !== 0x0a || this.digits === 0) return 'its sparse map is unreadable';
      const value = this.value;
      this.value = 0;
      this.digits = 0;
      if (this.expected < 0) {
        if (value > MAX_SPARSE_SEGMENTS) return TOO_MANY_SEGMENTS;
        this.expected = value * 2;
      } else if (this.pendingOffset < 0) {
        this.pendingOffset = value;
        this.expected--;
      } else {
        this.map.push(this.pendingOffset, value);
        this.pendingOffset = -1;
        this.expected--;
      }
      if (this.expected === 0) return 'done';
    }
    return 'more';
  }
}

/** Expands a sparse member's stored data to the file's content by hashing zeros for holes. */
export class SparseExpander implements TarEntrySink {
  private segmentIndex = 0;
  private inSegment = 0;
  private position = 0;

  constructor(
    private readonly target: TarEntrySink,
    private readonly segments: SparseMap,
    private readonly realSize: number,
  ) {}

  write(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      // More data than the map describes: counted as stored bytes only.
      if (this.segmentIndex >= this.segments.count) return;
      const offset = this.segments.offset(this.segmentIndex);
      const length = this.segments.length(this.segmentIndex);
      if (this.inSegment === 0) this.fillTo(offset);
      const take = Math.min(length - this.inSegment, chunk.length - at);
      if (take > 0) {
        this.target.write(chunk.subarray(at, at + take));
        at += take;
        this.inSegment += take;
        this.position += take;
      }
      if (this.inSegment === length) {
        this.segmentIndex++;
        this.inSegment = 0;
      }
    }
  }

  end(): void {
    this.fillTo(this.realSize);
    this.target.end();
  }

  private fillTo(offset: number): void {
    while (this.position < offset) {
      const n = Math.min(ZERO_CHUNK.length, offset - this.position);
      this.target.write(n === ZERO_CHUNK.length ? ZERO_CHUNK : ZERO_CHUNK.subarray(0, n));
      this.position += n;
    }
  }
}
