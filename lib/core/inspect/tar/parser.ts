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

import { resolveEntry, typeflagOf } from './entry.ts';
import { EXTENDED_TYPEFLAGS, ExtendedHeaders, type ExtendedKind } from './extended.ts';
import {
  BLOCK,
  checksumMatches,
  isZeroBlock,
  MAX_EXTENDED_HEADER_BYTES,
  numeric,
  type TarEntryHeader,
  type TarEntrySink,
} from './header.ts';
import {
  badChecksum,
  badHeader,
  endProblem,
  loneZeroBlock,
  type ParserState,
  type TarProblem,
  trailingData,
} from './problems.ts';
import { SparseExpander } from './sparse.ts';
import {
  gnuSparse,
  gnuSparseExtension,
  isPaxSparse,
  type PendingGnuSparse,
  type PendingSparseMap,
  paxSparse,
  paxSparseName,
  type SparseStep,
  sparseMapBlock,
} from './sparse-entry.ts';

export type { TarProblem } from './problems.ts';

export interface TarParserHandlers {
  /** Called for each entry; return a sink to receive a regular file's content. */
  entry(header: TarEntryHeader): TarEntrySink | undefined;
  problem(problem: TarProblem): void;
}

export class TarParser {
  private state: ParserState = 'header';
  private readonly block = Buffer.alloc(BLOCK);
  private blockFill = 0;
  /** Bytes of the tar stream consumed so far. */
  private offset = 0;
  private remaining = 0;
  private sink: TarEntrySink | undefined;
  private currentPath = '';
  private readonly extended = new ExtendedHeaders();
  private zeroBlocks = 0;
  private firstZeroOffset = -1;
  private entryHeaderOffset = -1;
  private pendingSparse: PendingGnuSparse | undefined;
  private pendingSparseMap: PendingSparseMap | undefined;
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
    return this.sparseMapScanned + (this.pendingSparseMap?.reader.scanned ?? 0);
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
          this.extended.collect(chunk.subarray(at, at + take));
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
                this.handlers.problem(trailingData(this.offset + (i - at)));
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
    if (this.state === 'data') this.sink = undefined;
    const problem = endProblem({
      state: this.state,
      at: this.offset + this.blockFill,
      blockFill: this.blockFill,
      zeroBlocks: this.zeroBlocks,
      currentPath: this.currentPath,
      remaining: this.remaining,
      resyncFrom: this.resyncFrom,
    });
    if (problem) this.handlers.problem(problem);
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
        this.handlers.problem(badChecksum(blockOffset, this.sawEntries ? this.currentPath : undefined));
      }
      return;
    }
    if (this.zeroBlocks === 1) {
      this.handlers.problem(loneZeroBlock(this.firstZeroOffset));
    }
    this.zeroBlocks = 0;
    if (resyncing) this.state = 'header';
    this.onHeader(block, blockOffset);
  }

  private onHeader(block: Buffer, blockOffset: number): void {
    const typeflag = typeflagOf(block);
    const size = numeric(block, 124, 12);
    if (Number.isNaN(size) || !Number.isSafeInteger(size)) {
      this.corruptHeader(blockOffset, 'its size field is not a number');
      return;
    }
    if (this.entryHeaderOffset < 0) this.entryHeaderOffset = blockOffset;
    const extendedKind = EXTENDED_TYPEFLAGS.get(typeflag);
    if (extendedKind !== undefined) {
      if (size > MAX_EXTENDED_HEADER_BYTES) {
        this.corruptHeader(blockOffset, `its extended header claims ${size} bytes`);
        return;
      }
      this.beginExtended(extendedKind, size);
      return;
    }
    if (typeflag === 'V') {
      // GNU volume label: metadata, no content.
      this.entryHeaderOffset = -1;
      this.skipData(size);
      return;
    }

    const metadata = this.extended.take();
    const entry = resolveEntry(block, typeflag, size, metadata);
    if (typeof entry === 'string') {
      this.corruptHeader(blockOffset, entry);
      return;
    }
    const headerOffset = this.entryHeaderOffset;
    this.entryHeaderOffset = -1;
    this.sawEntries = true;

    // Sparse members: old GNU 'S' headers, or pax GNU.sparse.* records.
    if (typeflag === 'S') {
      this.currentPath = entry.name;
      this.sparseStep(gnuSparse(block, entry, headerOffset), blockOffset);
      return;
    }
    if (entry.type === 'file' && isPaxSparse(metadata.attributes)) {
      this.currentPath = paxSparseName(entry, metadata);
      this.sparseStep(paxSparse(entry, metadata, headerOffset, blockOffset), blockOffset);
      return;
    }

    const { name, type, linkTarget, stored } = entry;
    const header: TarEntryHeader = {
      path: name,
      type,
      size: type === 'file' ? stored : 0,
      ...(linkTarget !== undefined && (type === 'hardlink' || type === 'symlink') ? { linkTarget } : {}),
      headerOffset,
      sparse: false,
    };
    this.currentPath = name;
    const sink = this.handlers.entry(header);
    if (type === 'file') {
      this.sink = sink;
      this.beginData(stored);
    } else {
      sink?.end();
      // Directories (GNU dumpdir), links and devices rarely carry data; when they do it is skipped.
      this.skipData(stored);
    }
  }

  /** Does what reading a sparse member's header or map said to do next. */
  private sparseStep(step: SparseStep, blockOffset: number): void {
    switch (step.kind) {
      case 'corrupt':
        this.corruptHeader(step.offset ?? blockOffset, step.why, step.member);
        if (step.skip !== undefined) this.skipData(step.skip);
        return;
      case 'extension':
        this.pendingSparse = step.pending;
        this.state = 'sparse-ext';
        return;
      case 'map':
        this.pendingSparseMap = step.pending;
        this.state = 'sparse-map';
        return;
      case 'start': {
        const sink = this.handlers.entry(step.header);
        this.sink = sink ? new SparseExpander(sink, step.segments, step.realSize) : undefined;
        this.beginData(step.stored);
        return;
      }
    }
  }

  private onSparseExtension(block: Buffer, blockOffset: number): void {
    const pending = this.pendingSparse;
    if (!pending) return;
    const step = gnuSparseExtension(pending, block);
    if (step === undefined) return;
    this.pendingSparse = undefined;
    this.state = 'header';
    this.sparseStep(step, blockOffset);
  }

  /** pax sparse 1.0: one more block of the map that leads the member's data. */
  private onSparseMapBlock(block: Buffer, blockOffset: number): void {
    const pending = this.pendingSparseMap;
    if (!pending) return;
    const step = sparseMapBlock(pending, block, blockOffset);
    if (step === undefined) return;
    this.pendingSparseMap = undefined;
    this.sparseMapScanned += pending.reader.scanned;
    this.state = 'header';
    this.sparseStep(step, blockOffset);
  }

  private corruptHeader(blockOffset: number, why: string, member?: string): void {
    this.handlers.problem(badHeader(blockOffset, why, member));
    this.entryHeaderOffset = -1;
    this.extended.forgetLocal();
    this.state = 'resync';
    this.resyncFrom = blockOffset;
  }

  private beginExtended(kind: ExtendedKind, size: number): void {
    this.extended.begin(kind, size);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (padded === 0) {
      this.finishExtended();
      return;
    }
    this.remaining = padded;
    this.state = 'extended';
  }

  private finishExtended(): void {
    const at = this.offset - Math.ceil(this.extended.size / BLOCK) * BLOCK;
    const invalid = this.extended.finish();
    this.state = 'header';
    if (invalid !== undefined) {
      this.corruptHeader(at, invalid);
      this.state = 'header';
    }
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
