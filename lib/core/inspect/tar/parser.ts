/**
 * A push-based tar reader that hashes as it goes. tar-stream (used to build archives in the
 * tests) skips zero blocks and stops at the first bad header, so it cannot tell an archive
 * cut at a member boundary from a whole one, cannot resume after damage to report what
 * else is wrong, and does not expand GNU sparse members; this reader does all three and
 * knows the byte offset of every problem.
 *
 * Formats: v7, ustar, POSIX pax (local and global headers), GNU and old GNU (long names
 * and link names, sparse members incl. extension blocks), pax sparse 0.0, 0.1 and 1.0.
 */

import {
  BLOCK,
  checksumMatches,
  cString,
  isZeroBlock,
  MAX_EXTENDED_HEADER_BYTES,
  numeric,
  type TarEntryHeader,
  type TarEntrySink,
  type TarEntryType,
} from './header.ts';
import { type PaxAttributes, parsePaxAttributes } from './pax.ts';
import {
  checkSegments,
  readMapList,
  SparseExpander,
  SparseMap,
  SparseMapReader,
  TOO_MANY_SEGMENTS,
} from './sparse.ts';

export interface TarProblem {
  kind: 'corrupt' | 'truncated';
  /** Byte offset in the tar stream (after decompression). */
  offset: number;
  member?: string;
  message: string;
}

export interface TarParserHandlers {
  /** Called for each entry; return a sink to receive a regular file's content. */
  entry(header: TarEntryHeader): TarEntrySink | undefined;
  problem(problem: TarProblem): void;
}

type State = 'header' | 'data' | 'extended' | 'sparse-ext' | 'sparse-map' | 'padding' | 'resync' | 'ended';

interface PendingExtended {
  kind: 'pax' | 'pax-global' | 'gnu-long-name' | 'gnu-long-link';
  size: number;
}

export class TarParser {
  private state: State = 'header';
  private readonly block = Buffer.alloc(BLOCK);
  private blockFill = 0;
  /** Bytes of the tar stream consumed so far. */
  private offset = 0;
  private remaining = 0;
  private sink: TarEntrySink | undefined;
  private currentPath = '';
  private extended: PendingExtended | undefined;
  private extendedChunks: Buffer[] = [];
  private extendedFill = 0;
  private pax: PaxAttributes | undefined;
  private readonly paxGlobal = new Map<string, string>();
  private longName: string | undefined;
  private longLink: string | undefined;
  private zeroBlocks = 0;
  private firstZeroOffset = -1;
  private entryHeaderOffset = -1;
  /** A GNU sparse member whose header announced extension blocks. */
  private pendingSparse:
    | { header: TarEntryHeader; segments: SparseMap; stored: number; realSize: number; full: boolean }
    | undefined;
  /** A pax 1.0 sparse member waiting for its map at the start of its data. */
  private pendingSparseV1:
    | {
        header: TarEntryHeader;
        realSize: number;
        stored: number;
        reader: SparseMapReader;
        mapBytes: number;
        headerBlock: number;
      }
    | undefined;
  /** Bytes of pax 1.0 sparse maps examined, over all members (each map byte once). */
  private sparseMapScanned = 0;
  private resyncFrom = -1;
  private ended = false;
  private trailingGarbageReported = false;
  private sawEntries = false;

  constructor(private readonly handlers: TarParserHandlers) {}

  get bytesConsumed(): number {
    return this.offset;
  }

  /** Bytes of pax 1.0 sparse maps examined so far: the map's length, not its square. */
  get sparseMapBytesScanned(): number {
    return this.sparseMapScanned + (this.pendingSparseV1?.reader.scanned ?? 0);
  }

  /** Whether the two zero blocks that end an archive were read. */
  get complete(): boolean {
    return this.state === 'ended';
  }

  write(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      switch (this.state) {
        case 'data': {
          const take = Math.min(this.remaining, chunk.length - at);
          this.sink?.write(chunk.subarray(at, at + take));
          at += take;
          this.offset += take;
          this.remaining -= take;
          if (this.remaining === 0) this.finishData();
          break;
        }
        case 'padding': {
          const take = Math.min(this.remaining, chunk.length - at);
          at += take;
          this.offset += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = 'header';
          break;
        }
        case 'extended': {
          const take = Math.min(this.remaining, chunk.length - at);
          if (this.extendedFill < (this.extended?.size ?? 0)) {
            const keep = Math.min(take, (this.extended?.size ?? 0) - this.extendedFill);
            this.extendedChunks.push(Buffer.from(chunk.subarray(at, at + keep)));
            this.extendedFill += keep;
          }
          at += take;
          this.offset += take;
          this.remaining -= take;
          if (this.remaining === 0) this.finishExtended();
          break;
        }
        case 'ended': {
          if (!this.trailingGarbageReported) {
            for (let i = at; i < chunk.length; i++) {
              if (chunk[i] !== 0) {
                this.trailingGarbageReported = true;
                this.handlers.problem({
                  kind: 'corrupt',
                  offset: this.offset + (i - at),
                  message: `non-zero data at byte ${this.offset + (i - at)} after the end-of-archive blocks: something was appended to or overwrote the archive's end`,
                });
                break;
              }
            }
          }
          this.offset += chunk.length - at;
          at = chunk.length;
          break;
        }
        default: {
          // header, sparse-ext, resync: whole blocks
          if (this.blockFill === 0 && chunk.length - at >= BLOCK) {
            const block = chunk.subarray(at, at + BLOCK);
            at += BLOCK;
            this.onBlock(block);
          } else {
            const take = Math.min(BLOCK - this.blockFill, chunk.length - at);
            chunk.copy(this.block, this.blockFill, at, at + take);
            this.blockFill += take;
            at += take;
            if (this.blockFill === BLOCK) {
              this.blockFill = 0;
              this.onBlock(this.block);
            }
          }
        }
      }
    }
  }

  /** The input ended: report an archive that stops early. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const at = this.offset + this.blockFill;
    switch (this.state) {
      case 'ended':
        return;
      case 'data':
        this.sink = undefined;
        this.truncated(
          at,
          `the tar stream ends at byte ${at}, inside member "${this.currentPath}" (${this.remaining} of its bytes missing)`,
        );
        return;
      case 'padding':
      case 'header':
      case 'sparse-ext':
      case 'sparse-map':
        if (this.blockFill > 0) {
          this.truncated(at, `the tar stream ends at byte ${at}, inside a 512-byte header block`);
        } else if (this.state === 'sparse-ext' || this.state === 'sparse-map') {
          this.truncated(
            at,
            `the tar stream ends at byte ${at}, inside the sparse map of "${this.currentPath}"`,
          );
        } else if (this.zeroBlocks === 1) {
          this.truncated(at, `the tar stream ends at byte ${at} after one of the two end-of-archive blocks`);
        } else if (at === 0) {
          // No bytes at all: an empty backup, which the caller reports as such.
          return;
        } else {
          this.truncated(
            at,
            `the tar stream ends at byte ${at} at a member boundary, without the end-of-archive blocks`,
          );
        }
        return;
      case 'extended':
        this.truncated(at, `the tar stream ends at byte ${at}, inside an extended header`);
        return;
      case 'resync':
        this.truncated(
          at,
          `the tar stream ends at byte ${at} while looking for a valid header after damage at byte ${this.resyncFrom}`,
        );
        return;
    }
  }

  private truncated(offset: number, detail: string): void {
    this.handlers.problem({
      kind: 'truncated',
      offset,
      ...(this.state === 'data' ? { member: this.currentPath } : {}),
      message: `${detail}: the archive was cut short; re-copy the backup from its origin`,
    });
  }

  private onBlock(block: Buffer): void {
    const blockOffset = this.offset;
    this.offset += BLOCK;
    if (this.state === 'sparse-ext') {
      this.onSparseExtension(block, blockOffset);
      return;
    }
    if (this.state === 'sparse-map') {
      this.onSparseMapBlock(block, blockOffset);
      return;
    }
    if (isZeroBlock(block)) {
      this.zeroBlocks++;
      if (this.zeroBlocks === 1) this.firstZeroOffset = blockOffset;
      if (this.zeroBlocks === 2) this.state = 'ended';
      return;
    }
    const resyncing = this.state === 'resync';
    if (!checksumMatches(block)) {
      if (!resyncing) {
        this.state = 'resync';
        this.resyncFrom = blockOffset;
        this.zeroBlocks = 0;
        this.handlers.problem({
          kind: 'corrupt',
          offset: blockOffset,
          message: `bad tar header at byte ${blockOffset} (checksum does not match${this.sawEntries ? `; the previous member was "${this.currentPath}"` : ''}): the archive is damaged there`,
        });
      }
      return;
    }
    if (this.zeroBlocks === 1) {
      this.handlers.problem({
        kind: 'corrupt',
        offset: this.firstZeroOffset,
        message: `a lone zero block at byte ${this.firstZeroOffset} inside the archive (a header was zeroed or data was lost there)`,
      });
    }
    this.zeroBlocks = 0;
    if (resyncing) this.state = 'header';
    this.onHeader(block, blockOffset);
  }

  private onHeader(block: Buffer, blockOffset: number): void {
    const typeflag = block[156] === 0 ? '0' : String.fromCharCode(block[156] as number);
    const size = numeric(block, 124, 12);
    if (Number.isNaN(size) || !Number.isSafeInteger(size)) {
      this.corruptHeader(blockOffset, 'its size field is not a number');
      return;
    }
    if (this.entryHeaderOffset < 0) this.entryHeaderOffset = blockOffset;
    const magic = block.toString('latin1', 257, 263);
    const ustar = magic === 'ustar\0';

    switch (typeflag) {
      case 'x':
      case 'g':
      case 'L':
      case 'K': {
        const kind =
          typeflag === 'x'
            ? 'pax'
            : typeflag === 'g'
              ? 'pax-global'
              : typeflag === 'L'
                ? 'gnu-long-name'
                : 'gnu-long-link';
        if (size > MAX_EXTENDED_HEADER_BYTES) {
          this.corruptHeader(blockOffset, `its extended header claims ${size} bytes`);
          return;
        }
        this.beginExtended({ kind, size });
        return;
      }
      case 'V':
        // GNU volume label: metadata, no content.
        this.entryHeaderOffset = -1;
        this.skipData(size);
        return;
    }

    let name = cString(block, 0, 100);
    if (ustar && block[345] !== 0) name = `${cString(block, 345, 155)}/${name}`;
    let linkTarget = block[157] === 0 ? undefined : cString(block, 157, 100);
    let effectiveSize = size;
    const pax = this.pax;
    const attributes = new Map<string, string>(this.paxGlobal);
    if (pax) for (const [k, v] of pax.values) attributes.set(k, v);
    if (this.longName !== undefined) name = this.longName;
    if (this.longLink !== undefined) linkTarget = this.longLink;
    const paxPath = attributes.get('path');
    if (paxPath !== undefined) name = paxPath;
    const paxLink = attributes.get('linkpath');
    if (paxLink !== undefined) linkTarget = paxLink;
    const paxSize = attributes.get('size');
    if (paxSize !== undefined) {
      const parsed = Number(paxSize);
      if (!Number.isSafeInteger(parsed) || parsed < 0) {
        this.corruptHeader(blockOffset, `its pax size "${paxSize}" is not a number`);
        return;
      }
      effectiveSize = parsed;
    }
    this.pax = undefined;
    this.longName = undefined;
    this.longLink = undefined;

    let type: TarEntryType;
    switch (typeflag) {
      case '0':
      case '7':
      case 'S':
        type = name.endsWith('/') && typeflag === '0' ? 'directory' : 'file';
        break;
      case '1':
        type = 'hardlink';
        break;
      case '2':
        type = 'symlink';
        break;
      case '5':
      case 'D':
        type = 'directory';
        break;
      default:
        type = 'other';
    }
    const headerOffset = this.entryHeaderOffset;
    this.entryHeaderOffset = -1;
    this.sawEntries = true;

    // Sparse members: old GNU 'S' headers, or pax GNU.sparse.* records.
    if (typeflag === 'S') {
      const segments = new SparseMap();
      for (let i = 0; i < 4; i++) {
        const at = 386 + i * 24;
        if (block[at] === 0) break;
        segments.push(numeric(block, at, 12), numeric(block, at + 12, 12));
      }
      const realSize = numeric(block, 483, 12);
      const header: TarEntryHeader = { path: name, type: 'file', size: realSize, headerOffset, sparse: true };
      this.currentPath = name;
      if (block[482] !== 0) {
        this.pendingSparse = { header, segments, stored: effectiveSize, realSize, full: false };
        this.state = 'sparse-ext';
        return;
      }
      this.startSparse(header, segments, effectiveSize, realSize, blockOffset);
      return;
    }
    const sparseMajor = attributes.get('GNU.sparse.major');
    const sparseName = attributes.get('GNU.sparse.name');
    if (
      type === 'file' &&
      (sparseMajor !== undefined ||
        attributes.has('GNU.sparse.size') ||
        attributes.has('GNU.sparse.map') ||
        attributes.has('GNU.sparse.offset'))
    ) {
      if (sparseName !== undefined) name = sparseName;
      const realSize = Number(attributes.get('GNU.sparse.realsize') ?? attributes.get('GNU.sparse.size'));
      const header: TarEntryHeader = { path: name, type: 'file', size: realSize, headerOffset, sparse: true };
      this.currentPath = name;
      if (!Number.isSafeInteger(realSize) || realSize < 0) {
        this.corruptHeader(blockOffset, 'its pax sparse size is missing or not a number');
        return;
      }
      if (sparseMajor === '1') {
        this.pendingSparseV1 = {
          header,
          realSize,
          stored: effectiveSize,
          reader: new SparseMapReader(),
          mapBytes: 0,
          headerBlock: blockOffset,
        };
        this.state = 'sparse-map';
        return;
      }
      let segments = new SparseMap();
      let tooMany = false;
      const map = attributes.get('GNU.sparse.map');
      if (map !== undefined) tooMany = !readMapList(map, segments);
      else if (pax?.runs) {
        segments = pax.runs;
        tooMany = pax.runsError !== undefined;
      }
      if (tooMany) {
        this.corruptHeader(blockOffset, TOO_MANY_SEGMENTS, name);
        this.skipData(effectiveSize);
        return;
      }
      this.startSparse(header, segments, effectiveSize, realSize, blockOffset);
      return;
    }

    const header: TarEntryHeader = {
      path: name,
      type,
      size: type === 'file' ? effectiveSize : 0,
      ...(linkTarget !== undefined && (type === 'hardlink' || type === 'symlink') ? { linkTarget } : {}),
      headerOffset,
      sparse: false,
    };
    this.currentPath = name;
    const sink = this.handlers.entry(header);
    if (type === 'file') {
      this.sink = sink;
      this.beginData(effectiveSize);
    } else {
      sink?.end();
      // Directories (GNU dumpdir), links and devices rarely carry data; when they do it is skipped.
      this.skipData(effectiveSize);
    }
  }

  private startSparse(
    header: TarEntryHeader,
    segments: SparseMap,
    stored: number,
    realSize: number,
    blockOffset: number,
  ): void {
    const invalid = checkSegments(segments, realSize);
    if (invalid !== undefined) {
      this.corruptHeader(blockOffset, invalid, header.path);
      this.skipData(stored);
      return;
    }
    const sink = this.handlers.entry({ ...header, size: realSize });
    this.sink = sink ? new SparseExpander(sink, segments, realSize) : undefined;
    this.beginData(stored);
  }

  private onSparseExtension(block: Buffer, blockOffset: number): void {
    const pending = this.pendingSparse;
    if (!pending) return;
    for (let i = 0; i < 21 && !pending.full; i++) {
      const at = i * 24;
      if (block[at] === 0) break;
      pending.full = !pending.segments.push(numeric(block, at, 12), numeric(block, at + 12, 12));
    }
    if (block[504] !== 0) return;
    this.pendingSparse = undefined;
    this.state = 'header';
    if (pending.full) {
      this.corruptHeader(blockOffset, TOO_MANY_SEGMENTS, pending.header.path);
      this.skipData(pending.stored);
      return;
    }
    this.startSparse(pending.header, pending.segments, pending.stored, pending.realSize, blockOffset);
  }

  private corruptHeader(blockOffset: number, why: string, member?: string): void {
    this.handlers.problem({
      kind: 'corrupt',
      offset: blockOffset,
      ...(member !== undefined ? { member } : {}),
      message: `bad tar header at byte ${blockOffset}${member !== undefined ? ` for "${member}"` : ''}: ${why}; the archive is damaged there`,
    });
    this.entryHeaderOffset = -1;
    this.pax = undefined;
    this.longName = undefined;
    this.longLink = undefined;
    this.state = 'resync';
    this.resyncFrom = blockOffset;
  }

  private beginExtended(extended: PendingExtended): void {
    this.extended = extended;
    this.extendedChunks = [];
    this.extendedFill = 0;
    const padded = Math.ceil(extended.size / BLOCK) * BLOCK;
    if (padded === 0) {
      this.finishExtended();
      return;
    }
    this.remaining = padded;
    this.state = 'extended';
  }

  private finishExtended(): void {
    const extended = this.extended as PendingExtended;
    const data = Buffer.concat(this.extendedChunks, this.extendedFill);
    this.extended = undefined;
    this.extendedChunks = [];
    this.state = 'header';
    const at = this.offset - Math.ceil(extended.size / BLOCK) * BLOCK;
    switch (extended.kind) {
      case 'gnu-long-name':
      case 'gnu-long-link': {
        const end = data.indexOf(0);
        const value = data.toString('utf8', 0, end === -1 ? data.length : end);
        if (extended.kind === 'gnu-long-name') this.longName = value;
        else this.longLink = value;
        return;
      }
      case 'pax':
      case 'pax-global': {
        const attributes = parsePaxAttributes(data);
        if (typeof attributes === 'string') {
          this.corruptHeader(at, `its pax extended header is invalid (${attributes})`);
          this.state = 'header';
          return;
        }
        if (extended.kind === 'pax') this.pax = attributes;
        // A global header applies to every later entry; only the last value per key counts.
        else for (const [k, v] of attributes.values) this.paxGlobal.set(k, v);
        return;
      }
    }
  }

  /** pax sparse 1.0: one more block of the map that leads the member's data. */
  private onSparseMapBlock(block: Buffer, blockOffset: number): void {
    const pending = this.pendingSparseV1;
    if (!pending) return;
    pending.mapBytes += BLOCK;
    const read = pending.reader.feed(block);
    if (read === 'more' && pending.mapBytes < pending.stored && pending.mapBytes < MAX_EXTENDED_HEADER_BYTES)
      return;
    this.pendingSparseV1 = undefined;
    this.sparseMapScanned += pending.reader.scanned;
    this.state = 'header';
    const rest = Math.max(0, pending.stored - pending.mapBytes);
    const invalid =
      read === 'done'
        ? checkSegments(pending.reader.map, pending.realSize)
        : read === 'more'
          ? 'its sparse map is unreadable'
          : read;
    if (invalid !== undefined) {
      this.corruptHeader(read === 'more' ? pending.headerBlock : blockOffset, invalid, pending.header.path);
      this.skipData(rest);
      return;
    }
    const sink = this.handlers.entry(pending.header);
    this.sink = sink ? new SparseExpander(sink, pending.reader.map, pending.realSize) : undefined;
    this.beginData(rest);
  }

  private beginData(size: number): void {
    if (size === 0) {
      this.sink?.end();
      this.sink = undefined;
      this.state = 'header';
      return;
    }
    this.remaining = size;
    this.state = 'data';
    this.padAfter = (BLOCK - (size % BLOCK)) % BLOCK;
  }

  private padAfter = 0;

  private finishData(): void {
    this.sink?.end();
    this.sink = undefined;
    if (this.padAfter > 0) {
      this.remaining = this.padAfter;
      this.state = 'padding';
    } else this.state = 'header';
  }

  private skipData(size: number): void {
    this.sink = undefined;
    this.beginData(size);
  }
}
