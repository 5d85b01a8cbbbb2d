/** What the tar reader reports about damage, and how it words it. */

export interface TarProblem {
  kind: 'corrupt' | 'truncated';
  /** Byte offset in the tar stream (after decompression). */
  offset: number;
  member?: string;
  message: string;
}

export type ParserState =
  | 'header'
  | 'data'
  | 'extended'
  | 'sparse-ext'
  | 'sparse-map'
  | 'padding'
  | 'resync'
  | 'ended';

/** Where the parser was when its input ended. */
export interface EndPosition {
  state: ParserState;
  /** Bytes of the tar stream received. */
  at: number;
  /** Bytes of a header block received but not yet read. */
  blockFill: number;
  zeroBlocks: number;
  currentPath: string;
  /** Bytes of the current member still expected. */
  remaining: number;
  resyncFrom: number;
}

/** The problem of an input that ended at `end`, or undefined when it ended where an archive may. */
export function endProblem(end: EndPosition): TarProblem | undefined {
  const { state, at } = end;
  let detail: string;
  switch (state) {
    case 'ended':
      return undefined;
    case 'data':
      detail = `the tar stream ends at byte ${at}, inside member "${end.currentPath}" (${end.remaining} of its bytes missing)`;
      break;
    case 'padding':
    case 'header':
    case 'sparse-ext':
    case 'sparse-map':
      if (end.blockFill > 0) detail = `the tar stream ends at byte ${at}, inside a 512-byte header block`;
      else if (state === 'sparse-ext' || state === 'sparse-map') {
        detail = `the tar stream ends at byte ${at}, inside the sparse map of "${end.currentPath}"`;
      } else if (end.zeroBlocks === 1) {
        detail = `the tar stream ends at byte ${at} after one of the two end-of-archive blocks`;
      } else if (at === 0) {
        // No bytes at all: an empty backup, which the caller reports as such.
        return undefined;
      } else {
        detail = `the tar stream ends at byte ${at} at a member boundary, without the end-of-archive blocks`;
      }
      break;
    case 'extended':
      detail = `the tar stream ends at byte ${at}, inside an extended header`;
      break;
    case 'resync':
      detail = `the tar stream ends at byte ${at} while looking for a valid header after damage at byte ${end.resyncFrom}`;
      break;
  }
  return {
    kind: 'truncated',
    offset: at,
    ...(state === 'data' ? { member: end.currentPath } : {}),
    message: `${detail}: the archive was cut short; re-copy the backup from its origin`,
  };
}

export function badChecksum(offset: number, previousMember: string | undefined): TarProblem {
  return {
    kind: 'corrupt',
    offset,
    message: `bad tar header at byte ${offset} (checksum does not match${previousMember !== undefined ? `; the previous member was "${previousMember}"` : ''}): the archive is damaged there`,
  };
}

export function badHeader(offset: number, why: string, member?: string): TarProblem {
  return {
    kind: 'corrupt',
    offset,
    ...(member !== undefined ? { member } : {}),
    message: `bad tar header at byte ${offset}${member !== undefined ? ` for "${member}"` : ''}: ${why}; the archive is damaged there`,
  };
}

export function loneZeroBlock(offset: number): TarProblem {
  return {
    kind: 'corrupt',
    offset,
    message: `a lone zero block at byte ${offset} inside the archive (a header was zeroed or data was lost there)`,
  };
}

export function trailingData(offset: number): TarProblem {
  return {
    kind: 'corrupt',
    offset,
    message: `non-zero data at byte ${offset} after the end-of-archive blocks: something was appended to or overwrote the archive's end`,
  };
}
