/** Decompression failures described as archive problems, with where the damage lies. */
import type { ArchiveProblem } from './archive-inspection.ts';

/**
 * Where zlib failed, as far as it is known: zlib reports no position, but it had consumed
 * `consumed` bytes in the calls that succeeded and had been given `fed` bytes, so the damage
 * lies in between (or earlier, for a trailer check that fails at the end of a member).
 */
function failureSpan(consumed: number, fed: number): string {
  if (fed <= 0) return '';
  return consumed > 0 && consumed < fed
    ? `compressed bytes ${consumed}-${fed}`
    : `the first ${fed} compressed bytes`;
}

export function describeZlibError(
  error: Error & { code?: string },
  layer: 'gzip' | 'zstd',
  consumed: number,
  fed: number,
  storedBytes: number,
  producedOutput: boolean,
): ArchiveProblem {
  const message = error.message;
  if (/unexpected end of file/i.test(message) || error.code === 'Z_BUF_ERROR') {
    return {
      kind: 'truncated',
      layer,
      offset: storedBytes,
      message: `the ${layer} stream ends at byte ${storedBytes} (the end of the stored object) before its end: the upload or copy was cut short; re-copy the backup from its origin`,
    };
  }
  const span = failureSpan(consumed, fed);
  const within = span ? ` (zlib failed within ${span})` : '';
  let what: string;
  if (/incorrect header check/i.test(message)) {
    what = producedOutput
      ? `data that is not gzip follows a complete gzip member${within} (trailing garbage, or a damaged member header)`
      : `the object does not start with a valid ${layer} header (it is not ${layer}-compressed, or its first bytes are damaged)`;
  } else if (/incorrect data check/i.test(message)) {
    what = `the CRC-32 in a gzip trailer does not match the decompressed data${within}`;
  } else if (/incorrect length check/i.test(message)) {
    what = `the length (ISIZE) in a gzip trailer does not match the decompressed data${within}`;
  } else {
    what = `invalid ${layer} data${within} (${message})`;
  }
  return {
    kind: 'corrupt',
    layer,
    ...(fed > 0 ? { offset: fed } : {}),
    message: `${what}: the archive is damaged; restore it from another copy`,
  };
}
