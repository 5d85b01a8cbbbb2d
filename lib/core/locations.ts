import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './errors.ts';

/** Where a source or a redundancy target really is: an S3 bucket and key prefix, or a real folder. */
export type Location =
  | { kind: 's3'; bucket: string; prefix: string; url: string }
  | { kind: 'folder'; path: string; url: string };

function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * The real path of a folder that may not exist yet: the realpath of its nearest existing ancestor,
 * then the missing part. Nothing is normalised before the filesystem has its say, so `link/..`
 * means what the kernel would make of it. A dangling link on the way is refused: a write would
 * follow it somewhere no check can see.
 */
async function realFolder(given: string, cwd: string): Promise<string> {
  let current = path.isAbsolute(given) ? given : `${cwd.replace(/\/+$/, '')}/${given}`;
  const missing: string[] = [];
  for (;;) {
    try {
      return path.join(await realpath(current), ...missing.reverse());
    } catch (error) {
      if (!isNotFound(error)) {
        throw new UsageError(`cannot resolve the folder ${given}: ${(error as Error).message}`, undefined, {
          cause: error,
        });
      }
    }
    const link = await lstat(current).catch(() => undefined);
    if (link?.isSymbolicLink()) {
      throw new UsageError(`the folder ${given} goes through the dangling link ${current}`);
    }
    const parent = path.dirname(current);
    if (parent === current) return path.join(current, ...missing.reverse());
    missing.push(path.basename(current));
    current = parent;
  }
}

/**
 * Resolves a source or target as the stores will open it: `s3://bucket/prefix` by bucket and
 * prefix, `file://` and folders (relative to `cwd`) by real path, symlinks followed.
 */
export async function resolveLocation(url: string, cwd: string): Promise<Location> {
  const s3 = /^s3:\/\/([^/]*)(?:\/(.*))?$/i.exec(url);
  if (s3) {
    const bucket = (s3[1] as string).toLowerCase();
    if (bucket === '') throw new UsageError(`"${url}" names no bucket: write it as s3://bucket/prefix`);
    return { kind: 's3', bucket, prefix: (s3[2] ?? '').replace(/^\/+|\/+$/g, ''), url };
  }
  if (/^file:\/\//i.test(url))
    return { kind: 'folder', path: await realFolder(fileURLToPath(url), cwd), url };
  if (/^[a-z][a-z0-9+.-]+:\/\//i.test(url)) {
    throw new UsageError(`unsupported location "${url}": use a folder path or s3://bucket/prefix`);
  }
  return { kind: 'folder', path: await realFolder(url, cwd), url };
}

/** Whether either location holds the other (or they are the same place). */
export function locationsOverlap(a: Location, b: Location): boolean {
  if (a.kind === 's3' && b.kind === 's3') {
    if (a.bucket !== b.bucket) return false;
    // An S3 store lists `prefix/`: a prefix holds another when the other starts with it and a slash.
    const within = (inner: string, outer: string) => outer === '' || `${inner}/`.startsWith(`${outer}/`);
    return within(a.prefix, b.prefix) || within(b.prefix, a.prefix);
  }
  if (a.kind === 'folder' && b.kind === 'folder') {
    const within = (inner: string, outer: string) =>
      inner === outer || inner.startsWith(outer.endsWith(path.sep) ? outer : `${outer}${path.sep}`);
    return within(a.path, b.path) || within(b.path, a.path);
  }
  return false;
}

/**
 * Refuses redundancy targets that overlap a source, after resolving both (relative paths,
 * symlinks, `s3://` bucket and prefix): a copy must never be written into a source.
 */
export async function refuseTargetsInSources(
  sources: readonly string[],
  targets: readonly string[],
  cwd: string,
): Promise<void> {
  if (targets.length === 0) return;
  const resolvedSources = await Promise.all(sources.map((s) => resolveLocation(s, cwd)));
  for (const target of new Set(targets)) {
    let resolved: Location;
    try {
      resolved = await resolveLocation(target, cwd);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      throw new UsageError(`redundancy target ${target}: ${error.message}`, 'redundancy.targets', {
        cause: error,
      });
    }
    const clash = resolvedSources.find((s) => locationsOverlap(resolved, s));
    if (clash) {
      const where = (l: Location) => (l.kind === 'folder' && l.path !== l.url ? ` (${l.path})` : '');
      throw new UsageError(
        `redundancy target ${target}${where(resolved)} overlaps the source ${clash.url}${where(clash)}: a copy must never be written into a source; choose a target outside every source`,
        'redundancy.targets',
      );
    }
  }
}
