import type { ContentDigest } from '../model.ts';

const TYPES: ReadonlyArray<ContentDigest['type']> = ['file', 'directory', 'symlink', 'hardlink', 'other'];
const TYPE_CODE = new Map(TYPES.map((type, code) => [type, code]));
const DIGEST_BYTES = 32;
const DIGESTS_PER_SLAB = 2048;
/** SHA-256 of nothing: what links, directories and empty files hash to. */
const EMPTY_DIGEST = Buffer.from('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex');

function grow<T extends Float64Array | Uint8Array | Int32Array>(array: T, needed: number): T {
  if (needed <= array.length) return array;
  const bigger = new (array.constructor as new (length: number) => T)(Math.max(needed, array.length * 2));
  bigger.set(array);
  return bigger;
}

/**
 * What the tar-root SHA256SUMS check needs of every member, kept compactly: an archive of
 * 80,000 files keeps ~100 bytes a member (path and map entry, digest in a shared slab,
 * size and type in typed arrays) instead of an object and a 64-character hex string each.
 */
export class MemberTable {
  private readonly index = new Map<string, number>();
  private readonly slabs: Buffer[] = [];
  private sizes = new Float64Array(1024);
  private types = new Uint8Array(1024);
  /** Line of the manifest that first listed the member (0: not listed). */
  private listedLines = new Int32Array(1024);
  private readonly links = new Map<number, string>();
  private count = 0;

  /** Records a member (a later member of the same path replaces it); returns its slot. */
  add(path: string, type: ContentDigest['type'], size: number, digest: Buffer, linkTarget?: string): number {
    const slot = this.count++;
    this.sizes = grow(this.sizes, this.count);
    this.types = grow(this.types, this.count);
    this.listedLines = grow(this.listedLines, this.count);
    this.sizes[slot] = size;
    this.types[slot] = TYPE_CODE.get(type) ?? TYPES.length - 1;
    const slab = Math.floor(slot / DIGESTS_PER_SLAB);
    if (slab === this.slabs.length) this.slabs.push(Buffer.allocUnsafe(DIGESTS_PER_SLAB * DIGEST_BYTES));
    digest.copy(this.slabs[slab] as Buffer, (slot % DIGESTS_PER_SLAB) * DIGEST_BYTES, 0, DIGEST_BYTES);
    if (linkTarget !== undefined) this.links.set(slot, linkTarget);
    const earlier = this.index.get(path);
    if (earlier !== undefined) this.links.delete(earlier);
    this.index.set(path, slot);
    return slot;
  }

  find(path: string): number | undefined {
    return this.index.get(path);
  }

  type(slot: number): ContentDigest['type'] {
    return TYPES[this.types[slot] as number] as ContentDigest['type'];
  }

  size(slot: number): number {
    return this.sizes[slot] as number;
  }

  linkTarget(slot: number): string | undefined {
    return this.links.get(slot);
  }

  digest(slot: number): Buffer {
    const slab = this.slabs[Math.floor(slot / DIGESTS_PER_SLAB)] as Buffer;
    const at = (slot % DIGESTS_PER_SLAB) * DIGEST_BYTES;
    return slab.subarray(at, at + DIGEST_BYTES);
  }

  sha256(slot: number): string {
    return this.digest(slot).toString('hex');
  }

  listedLine(slot: number): number {
    return this.listedLines[slot] as number;
  }

  markListed(slot: number, line: number): void {
    this.listedLines[slot] = line;
  }

  /** Every path with its current slot. */
  entries(): IterableIterator<[string, number]> {
    return this.index.entries();
  }

  static readonly EMPTY_DIGEST = EMPTY_DIGEST;
}
