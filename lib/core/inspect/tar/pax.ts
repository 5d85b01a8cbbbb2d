/** pax extended headers: records, and the attributes of them this reader uses. */
import { SparseMap, TOO_MANY_SEGMENTS } from './sparse.ts';

/**
 * The pax records this reader uses; others (times, owners, xattrs, unknown keys) are not kept,
 * so a header of a million made-up keys costs nothing to carry to every later entry.
 */
const PAX_KEYS = new Set([
  'path',
  'linkpath',
  'size',
  'GNU.sparse.major',
  'GNU.sparse.name',
  'GNU.sparse.size',
  'GNU.sparse.realsize',
  'GNU.sparse.map',
  'GNU.sparse.offset',
]);

/** Calls `record` for each `length key=value\n` record; returns why the header is invalid, if it is. */
function parsePax(data: Buffer, record: (key: string, value: string) => void): string | undefined {
  let at = 0;
  while (at < data.length) {
    if (data[at] === 0) break;
    const space = data.indexOf(0x20, at);
    if (space === -1) return `pax record at byte ${at} has no length`;
    const length = Number.parseInt(data.toString('latin1', at, space), 10);
    if (!Number.isInteger(length) || length <= space - at + 1 || at + length > data.length) {
      return `pax record at byte ${at} has a bad length`;
    }
    if (data[at + length - 1] !== 0x0a) return `pax record at byte ${at} does not end with a newline`;
    const equals = data.indexOf(0x3d, space + 1);
    if (equals <= space + 1 || equals >= at + length - 1) return `pax record at byte ${at} has no key=value`;
    record(data.toString('utf8', space + 1, equals), data.toString('utf8', equals + 1, at + length - 1));
    at += length;
  }
  return undefined;
}

/** What one pax header said that this reader uses. */
export interface PaxAttributes {
  values: Map<string, string>;
  /** pax sparse 0.0: GNU.sparse.offset / GNU.sparse.numbytes pairs, in order. */
  runs: SparseMap | undefined;
  /** Why the sparse runs cannot be used (too many). */
  runsError: string | undefined;
}

export function parsePaxAttributes(data: Buffer): PaxAttributes | string {
  const attributes: PaxAttributes = { values: new Map(), runs: undefined, runsError: undefined };
  let pendingOffset: number | undefined;
  const invalid = parsePax(data, (key, value) => {
    if (key === 'GNU.sparse.offset') pendingOffset = Number(value);
    else if (key === 'GNU.sparse.numbytes') {
      if (pendingOffset === undefined) return;
      attributes.runs ??= new SparseMap();
      if (!attributes.runs.push(pendingOffset, Number(value))) attributes.runsError = TOO_MANY_SEGMENTS;
      pendingOffset = undefined;
      return;
    }
    if (PAX_KEYS.has(key)) attributes.values.set(key, value);
  });
  return invalid ?? attributes;
}
