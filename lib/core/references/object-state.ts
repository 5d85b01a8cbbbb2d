import type { FindingList } from './finding-list.ts';

/**
 * The reference checksums of a backup's stored bytes and the findings they give, shared by the
 * integrity pass and the restore: whichever reads the bytes, the same rules and the same codes.
 */

/** One stored object as a pass read it, and what its references said. */
export interface ObjectState {
  key: string;
  path: string;
  size: number;
  sha256?: string;
  readFully: boolean;
  references: number;
  mismatch: boolean;
  /** Read, but found damaged (corrupt or truncated archive). */
  damaged?: boolean;
  /** Already reported as not in the manifest covering its folder. */
  unlisted?: boolean;
  /** A 0-byte archive, already EMPTY_BACKUP: nothing left to vouch for. */
  empty?: boolean;
}

export function newState(object: { key: string; path: string; size: number }): ObjectState {
  return {
    key: object.key,
    path: object.path,
    size: object.size,
    readFully: false,
    references: 0,
    mismatch: false,
  };
}

export function compareReference(
  state: ObjectState,
  expected: string,
  source: string,
  findings: FindingList,
  advice: string,
): void {
  if (state.sha256 === expected) {
    state.references++;
    return;
  }
  state.mismatch = true;
  findings.add(
    'CHECKSUM_MISMATCH',
    `${state.path}: SHA-256 is ${state.sha256} but ${source} says ${expected}; ${advice}`,
    state.path,
  );
}
