/** How an archive's bytes are compressed. */
export type Compression = 'gzip' | 'zstd' | 'none';

/**
 * The names that announce an archive backup, longest first where one suffix ends another: the
 * catalogue, the integrity pass and the stack's arrival rules all read this one list.
 */
export const ARCHIVE_SUFFIXES: ReadonlyArray<readonly [suffix: string, Compression, tar: boolean]> = [
  ['.tar.gz', 'gzip', true],
  ['.tgz', 'gzip', true],
  ['.tar.zst', 'zstd', true],
  ['.tar.zstd', 'zstd', true],
  ['.tzst', 'zstd', true],
  ['.tar', 'none', true],
  ['.gz', 'gzip', false],
  ['.zst', 'zstd', false],
];
