/**
 * Extended headers: the pax (local and global) and GNU long-name/long-link members that say
 * something about the entry after them. Kept here until that entry's header block arrives.
 */
import { type PaxAttributes, parsePaxAttributes } from './pax.ts';

export type ExtendedKind = 'pax' | 'pax-global' | 'gnu-long-name' | 'gnu-long-link';

/** The typeflags of extended headers and what each is. */
export const EXTENDED_TYPEFLAGS: ReadonlyMap<string, ExtendedKind> = new Map([
  ['x', 'pax'],
  ['g', 'pax-global'],
  ['L', 'gnu-long-name'],
  ['K', 'gnu-long-link'],
]);

/** What the extended headers before an entry said about it. */
export interface EntryMetadata {
  /** Global pax attributes overridden by the entry's own. */
  attributes: Map<string, string>;
  /** The entry's own pax header, if it had one (its sparse 0.0 runs live there). */
  pax: PaxAttributes | undefined;
  longName: string | undefined;
  longLink: string | undefined;
}

export class ExtendedHeaders {
  private pending: { kind: ExtendedKind; size: number } | undefined;
  private chunks: Buffer[] = [];
  private fill = 0;
  private pax: PaxAttributes | undefined;
  private readonly paxGlobal = new Map<string, string>();
  private longName: string | undefined;
  private longLink: string | undefined;

  /** An extended header of `size` bytes starts; its data follows. */
  begin(kind: ExtendedKind, size: number): void {
    this.pending = { kind, size };
    this.chunks = [];
    this.fill = 0;
  }

  /** The announced size of the extended header being read. */
  get size(): number {
    return this.pending?.size ?? 0;
  }

  /** Data of the extended header (padding included): keeps up to its announced size. */
  collect(chunk: Buffer): void {
    const size = this.size;
    if (this.fill >= size) return;
    const keep = Math.min(chunk.length, size - this.fill);
    this.chunks.push(Buffer.from(chunk.subarray(0, keep)));
    this.fill += keep;
  }

  /** The extended header was read whole: why it is invalid, if it is. */
  finish(): string | undefined {
    const pending = this.pending as { kind: ExtendedKind; size: number };
    const data = Buffer.concat(this.chunks, this.fill);
    this.pending = undefined;
    this.chunks = [];
    switch (pending.kind) {
      case 'gnu-long-name':
      case 'gnu-long-link': {
        const end = data.indexOf(0);
        const value = data.toString('utf8', 0, end === -1 ? data.length : end);
        if (pending.kind === 'gnu-long-name') this.longName = value;
        else this.longLink = value;
        return undefined;
      }
      case 'pax':
      case 'pax-global': {
        const attributes = parsePaxAttributes(data);
        if (typeof attributes === 'string') return `its pax extended header is invalid (${attributes})`;
        if (pending.kind === 'pax') this.pax = attributes;
        // A global header applies to every later entry; only the last value per key counts.
        else for (const [k, v] of attributes.values) this.paxGlobal.set(k, v);
        return undefined;
      }
    }
  }

  /** What applies to the entry whose header block arrived; the entry's own headers are then used up. */
  take(): EntryMetadata {
    const pax = this.pax;
    const attributes = new Map<string, string>(this.paxGlobal);
    if (pax) for (const [k, v] of pax.values) attributes.set(k, v);
    const metadata: EntryMetadata = { attributes, pax, longName: this.longName, longLink: this.longLink };
    this.forgetLocal();
    return metadata;
  }

  /** Damage: the entry's own headers no longer belong to anything (global ones still apply). */
  forgetLocal(): void {
    this.pax = undefined;
    this.longName = undefined;
    this.longLink = undefined;
  }
}
