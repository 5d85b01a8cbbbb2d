import { randomBytes } from 'node:crypto';
import type { ContentDigest } from '../model.ts';

const TYPES: ReadonlyArray<ContentDigest['type']> = ['file', 'directory', 'symlink', 'hardlink', 'other'];
const TYPE_CODE = new Map(TYPES.map((type, code) => [type, code]));
/** Set in a member's type byte when a later member of the same path replaced it. */
const REPLACED = 0x80;
const DIGEST_BYTES = 32;
/** Members per column chunk: columns grow a chunk at a time, never by copying. */
const CHUNK = 1 << 16;
const NAME_SLAB = 1 << 20;
/** Slabs and columns start this small and double up to full size: most backups hold a few members, and a pass per backup must not allocate megabytes. */
const FIRST_BYTES = 4096;
/** SHA-256 of nothing: what links, directories and empty files hash to. */
const EMPTY_DIGEST = Buffer.from('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex');
/** Bytes a member costs besides its name and its index buckets: digest, size, type, listed line, name/link/hash fields. */
const MEMBER_BYTES = DIGEST_BYTES + 8 + 1 + 4 + 4 * 4;

/**
 * The most memory the table takes, so that a pass stays under 160 MB of RSS whatever the
 * archive: ~61 bytes a member plus its name and 4-8 bytes of index, so about 800,000 members
 * with short paths. Past it members are no longer recorded, and a SHA256SUMS inside the
 * archive is reported unchecked.
 */
export const MAX_MEMBER_TABLE_BYTES = 64 * 1024 * 1024;

/** A keyed hash (HalfSipHash-2-4): a hostile archive cannot choose names that collide. */
function halfSipHash(k0: number, k1: number, data: Buffer, length: number): number {
  let v0 = k0 | 0;
  let v1 = k1 | 0;
  let v2 = (0x6c796765 ^ k0) | 0;
  let v3 = (0x74656462 ^ k1) | 0;
  const rounds = (n: number) => {
    for (let r = 0; r < n; r++) {
      v0 = (v0 + v1) | 0;
      v1 = (v1 << 5) | (v1 >>> 27);
      v1 ^= v0;
      v0 = (v0 << 16) | (v0 >>> 16);
      v2 = (v2 + v3) | 0;
      v3 = (v3 << 8) | (v3 >>> 24);
      v3 ^= v2;
      v0 = (v0 + v3) | 0;
      v3 = (v3 << 7) | (v3 >>> 25);
      v3 ^= v0;
      v2 = (v2 + v1) | 0;
      v1 = (v1 << 13) | (v1 >>> 19);
      v1 ^= v2;
      v2 = (v2 << 16) | (v2 >>> 16);
    }
  };
  const whole = length - (length & 3);
  for (let i = 0; i < whole; i += 4) {
    const m =
      (data[i] as number) |
      ((data[i + 1] as number) << 8) |
      ((data[i + 2] as number) << 16) |
      ((data[i + 3] as number) << 24);
    v3 ^= m;
    rounds(2);
    v0 ^= m;
  }
  let b = length << 24;
  for (let i = whole, shift = 0; i < length; i++, shift += 8) b |= (data[i] as number) << shift;
  v3 ^= b;
  rounds(2);
  v0 ^= b;
  v2 ^= 0xff;
  rounds(4);
  return (v1 ^ v3) | 0;
}

/** Names and link targets back to back in 1 MiB slabs (a long name spans slabs). */
class NameArena {
  private readonly slabs: Buffer[] = [];
  used = 0;

  append(bytes: Buffer, length: number): number {
    const at = this.used;
    let done = 0;
    while (done < length) {
      const slab = Math.floor(this.used / NAME_SLAB);
      const within = this.used % NAME_SLAB;
      const n = Math.min(length - done, NAME_SLAB - within);
      if (slab === this.slabs.length) this.slabs.push(Buffer.allocUnsafe(Math.min(NAME_SLAB, FIRST_BYTES)));
      this.slabs[slab] = grown(this.slabs[slab] as Buffer, within + n, NAME_SLAB);
      bytes.copy(this.slabs[slab] as Buffer, within, done, done + n);
      done += n;
      this.used += n;
    }
    return at;
  }

  equals(at: number, bytes: Buffer, length: number): boolean {
    let done = 0;
    while (done < length) {
      const position = at + done;
      const slab = this.slabs[Math.floor(position / NAME_SLAB)] as Buffer;
      const within = position % NAME_SLAB;
      const n = Math.min(length - done, NAME_SLAB - within);
      if (bytes.compare(slab, within, within + n, done, done + n) !== 0) return false;
      done += n;
    }
    return true;
  }

  read(at: number, length: number): string {
    const slab = Math.floor(at / NAME_SLAB);
    if (Math.floor((at + length - 1) / NAME_SLAB) === slab || length === 0) {
      const within = at % NAME_SLAB;
      return (this.slabs[slab] as Buffer).toString('utf8', within, within + length);
    }
    const copy = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const position = at + done;
      const source = this.slabs[Math.floor(position / NAME_SLAB)] as Buffer;
      const within = position % NAME_SLAB;
      const n = Math.min(length - done, NAME_SLAB - within);
      source.copy(copy, done, within, within + n);
      done += n;
    }
    return copy.toString('utf8');
  }
}

/** `buffer`, or a copy at least `needed` bytes long (doubling, at most `limit`). */
function grown(buffer: Buffer, needed: number, limit: number): Buffer {
  if (needed <= buffer.length) return buffer;
  const bigger = Buffer.allocUnsafe(Math.min(limit, Math.max(buffer.length * 2, needed)));
  buffer.copy(bigger);
  return bigger;
}

/** A typed-array column grown one chunk at a time (the last chunk doubling up to full size). */
class Column<T extends Float64Array | Uint8Array | Int32Array | Uint32Array> {
  private readonly chunks: T[] = [];
  constructor(private readonly make: (length: number) => T) {}
  get(slot: number): number {
    return ((this.chunks[slot >>> 16] as T)[slot & (CHUNK - 1)] as number | undefined) ?? 0;
  }
  set(slot: number, value: number): void {
    const chunk = slot >>> 16;
    const within = slot & (CHUNK - 1);
    if (chunk === this.chunks.length) this.chunks.push(this.make(64));
    let column = this.chunks[chunk] as T;
    if (within >= column.length) {
      const bigger = this.make(Math.min(CHUNK, Math.max(column.length * 2, within + 1)));
      bigger.set(column);
      this.chunks[chunk] = bigger;
      column = bigger;
    }
    column[within] = value;
  }
}

/**
 * What the tar-root SHA256SUMS check (and hard links) need of every member, kept compactly:
 * the name's bytes in shared slabs, the digest in a shared slab, the rest in typed-array
 * columns, and an open-addressing index keyed by a seeded hash. About 70 bytes a member
 * plus its name; at most MAX_MEMBER_TABLE_BYTES in all.
 */
export class MemberTable {
  private readonly hashKey = randomBytes(8);
  private readonly k0 = this.hashKey.readInt32LE(0);
  private readonly k1 = this.hashKey.readInt32LE(4);
  private readonly names = new NameArena();
  private readonly digests: Buffer[] = [];
  private readonly sizes = new Column((n) => new Float64Array(n));
  private readonly types = new Column((n) => new Uint8Array(n));
  /** Line of the manifest that first listed the member (0: not listed). */
  private readonly listedLines = new Column((n) => new Int32Array(n));
  private readonly nameAt = new Column((n) => new Uint32Array(n));
  private readonly nameLength = new Column((n) => new Int32Array(n));
  /** Bytes of the link target stored after the name; -1 when the member has none. */
  private readonly linkLength = new Column((n) => new Int32Array(n));
  private readonly hashes = new Column((n) => new Int32Array(n));
  /** Slot + 1 of the current member of each path; 0: empty. */
  private buckets = new Int32Array(1024);
  private paths = 0;
  private count = 0;
  private scratch = Buffer.allocUnsafe(1024);
  /** Members not recorded because the table was full. */
  dropped = 0;

  constructor(readonly maxBytes = MAX_MEMBER_TABLE_BYTES) {}

  /** Members recorded (replaced ones included). */
  get recorded(): number {
    return this.count;
  }

  /** Bytes the table holds (or will hold for members recorded so far), for the budget. */
  get bytes(): number {
    // The index counted at twice its size: the room it takes while it doubles.
    return this.count * MEMBER_BYTES + this.names.used + this.buckets.length * 8;
  }

  /** Records a member (a later member of the same path replaces it); returns its slot, or undefined when full. */
  add(
    path: string,
    type: ContentDigest['type'],
    size: number,
    digest: Buffer,
    linkTarget?: string,
  ): number | undefined {
    const length = this.encode(path);
    const linkBytes = linkTarget === undefined ? -1 : Buffer.byteLength(linkTarget);
    if (this.dropped > 0 || this.bytes + MEMBER_BYTES + length + Math.max(0, linkBytes) > this.maxBytes) {
      this.dropped++;
      return undefined;
    }
    const hash = halfSipHash(this.k0, this.k1, this.scratch, length);
    const slot = this.count++;
    this.nameAt.set(slot, this.names.append(this.scratch, length));
    this.nameLength.set(slot, length);
    this.hashes.set(slot, hash);
    if (linkTarget !== undefined) {
      const link = Buffer.from(linkTarget);
      this.names.append(link, link.length);
    }
    this.linkLength.set(slot, linkBytes);
    this.sizes.set(slot, size);
    this.types.set(slot, TYPE_CODE.get(type) ?? TYPES.length - 1);
    this.listedLines.set(slot, 0);
    const slab = Math.floor(slot / CHUNK);
    if (slab === this.digests.length) this.digests.push(Buffer.allocUnsafe(FIRST_BYTES));
    const at = (slot % CHUNK) * DIGEST_BYTES;
    this.digests[slab] = grown(this.digests[slab] as Buffer, at + DIGEST_BYTES, CHUNK * DIGEST_BYTES);
    digest.copy(this.digests[slab] as Buffer, at, 0, DIGEST_BYTES);

    const bucket = this.bucketOf(hash, length);
    const earlier = (this.buckets[bucket] as number) - 1;
    if (earlier >= 0) this.types.set(earlier, this.types.get(earlier) | REPLACED);
    else if (++this.paths * 2 > this.buckets.length) {
      this.buckets[bucket] = slot + 1;
      this.grow();
      return slot;
    }
    this.buckets[bucket] = slot + 1;
    return slot;
  }

  find(path: string): number | undefined {
    const length = this.encode(path);
    const slot =
      (this.buckets[this.bucketOf(halfSipHash(this.k0, this.k1, this.scratch, length), length)] as number) -
      1;
    return slot < 0 ? undefined : slot;
  }

  type(slot: number): ContentDigest['type'] {
    return TYPES[this.types.get(slot) & ~REPLACED] as ContentDigest['type'];
  }

  size(slot: number): number {
    return this.sizes.get(slot);
  }

  path(slot: number): string {
    return this.names.read(this.nameAt.get(slot), this.nameLength.get(slot));
  }

  linkTarget(slot: number): string | undefined {
    const length = this.linkLength.get(slot);
    return length < 0
      ? undefined
      : this.names.read(this.nameAt.get(slot) + this.nameLength.get(slot), length);
  }

  digest(slot: number): Buffer {
    const slab = this.digests[Math.floor(slot / CHUNK)] as Buffer;
    const at = (slot % CHUNK) * DIGEST_BYTES;
    return slab.subarray(at, at + DIGEST_BYTES);
  }

  sha256(slot: number): string {
    return this.digest(slot).toString('hex');
  }

  listedLine(slot: number): number {
    return this.listedLines.get(slot);
  }

  markListed(slot: number, line: number): void {
    this.listedLines.set(slot, line);
  }

  /** Every path with its current slot, in archive order. */
  *entries(): IterableIterator<[string, number]> {
    for (let slot = 0; slot < this.count; slot++) {
      if ((this.types.get(slot) & REPLACED) === 0) yield [this.path(slot), slot];
    }
  }

  /** The path's UTF-8 bytes into the scratch buffer; returns their length. */
  private encode(path: string): number {
    const length = Buffer.byteLength(path);
    if (length > this.scratch.length)
      this.scratch = Buffer.allocUnsafe(Math.max(length, this.scratch.length * 2));
    this.scratch.write(path, 0, length, 'utf8');
    return length;
  }

  /** The bucket holding the scratch name, or the empty bucket where it would go. */
  private bucketOf(hash: number, length: number): number {
    const mask = this.buckets.length - 1;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const slot = (this.buckets[i] as number) - 1;
      if (slot < 0) return i;
      if (
        this.hashes.get(slot) === hash &&
        this.nameLength.get(slot) === length &&
        this.names.equals(this.nameAt.get(slot), this.scratch, length)
      ) {
        return i;
      }
    }
  }

  private grow(): void {
    const old = this.buckets;
    this.buckets = new Int32Array(old.length * 2);
    const mask = this.buckets.length - 1;
    for (const entry of old) {
      if (entry === 0) continue;
      let i = this.hashes.get(entry - 1) & mask;
      while (this.buckets[i] !== 0) i = (i + 1) & mask;
      this.buckets[i] = entry;
    }
  }

  static readonly EMPTY_DIGEST = EMPTY_DIGEST;
}
