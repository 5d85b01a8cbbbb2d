import { archiveFormatOf } from './compression.ts';
import type { Backup, BackupObject, ObjectInfo } from './model.ts';
import type { ObjectStore } from './ports.ts';
import { findTimestamps, withoutTimestamps } from './timestamps.ts';

export const MANIFEST_NAME = 'SHA256SUMS';
export const SIDECAR_SUFFIX = '.sha256';

function baseName(key: string): string {
  const slash = key.lastIndexOf('/');
  return slash < 0 ? key : key.slice(slash + 1);
}

function parentPrefix(key: string): string {
  const slash = key.lastIndexOf('/');
  return slash < 0 ? '' : key.slice(0, slash + 1);
}

/** The series a backup belongs to: its path with the timestamps and archive suffix taken out. */
export function seriesOf(pathWithoutSuffix: string): string {
  const cleaned = pathWithoutSuffix
    .split('/')
    .map((segment) => withoutTimestamps(segment))
    .filter((segment) => segment.length > 0)
    .join('/');
  return cleaned.length > 0 ? cleaned : 'default';
}

/** The outermost directory of a key whose name holds a timestamp: that directory is a backup. */
function timestampedDirectoryOf(key: string): string | undefined {
  const segments = key.split('/');
  let prefix = '';
  for (let i = 0; i < segments.length - 1; i++) {
    const segment = segments[i] as string;
    prefix += `${segment}/`;
    if (findTimestamps(segment).length > 0) return prefix;
  }
  return undefined;
}

/**
 * Whether a file outside any backup can still be adopted by a SHA256SUMS in one of its
 * folders: only while the sorted listing has not yet passed that folder's SHA256SUMS.
 */
function stillAdoptable(fileKey: string, currentKey: string): boolean {
  let at = fileKey.lastIndexOf('/');
  for (;;) {
    const folder = at < 0 ? '' : fileKey.slice(0, at + 1);
    if (currentKey <= folder + MANIFEST_NAME) return true;
    if (at < 0) return false;
    at = fileKey.lastIndexOf('/', at - 1);
  }
}

function createdFromName(path: string): Date | undefined {
  const stamps = findTimestamps(path);
  return stamps.at(-1)?.date;
}

function toObject(info: ObjectInfo, path: string): BackupObject {
  const o: BackupObject = { key: info.key, path, size: info.size, lastModified: info.lastModified };
  if (info.storageClass !== undefined) o.storageClass = info.storageClass;
  if (info.etag !== undefined) o.etag = info.etag;
  if (info.restored) o.restored = true;
  if (info.checksumAlgorithms !== undefined) o.checksumAlgorithms = info.checksumAlgorithms;
  if (info.checksumSha256 !== undefined) o.checksumSha256 = info.checksumSha256;
  if (info.checksumCrc64nvme !== undefined) o.checksumCrc64nvme = info.checksumCrc64nvme;
  if (info.checksumCrc32c !== undefined) o.checksumCrc32c = info.checksumCrc32c;
  return o;
}

function joinId(source: string, key: string): string {
  return `${source.replace(/\/+$/, '')}/${key}`;
}

class DirectoryBuilder {
  readonly members: BackupObject[] = [];
  readonly manifestKeys: string[] = [];
  /** Archives inside this backup: emitted after it, with the manifests that list them. */
  readonly nested: PendingArchive[] = [];
  newest = 0;
  constructor(readonly prefix: string) {}

  add(info: ObjectInfo): void {
    const path = info.key.slice(this.prefix.length);
    if (baseName(path) === MANIFEST_NAME) this.manifestKeys.push(info.key);
    else this.members.push(toObject(info, path));
    this.newest = Math.max(this.newest, info.lastModified.getTime());
  }

  build(source: string): Backup {
    const bare = this.prefix.replace(/\/$/, '');
    const fromName = createdFromName(bare);
    return {
      id: joinId(source, this.prefix),
      source,
      series: seriesOf(bare),
      kind: 'directory',
      key: this.prefix,
      name: baseName(bare) || source,
      createdAt: fromName ?? new Date(this.newest),
      createdFrom: fromName ? 'name' : 'mtime',
      objects: this.members.length,
      bytes: this.members.reduce((sum, m) => sum + m.size, 0),
      members: this.members,
      manifestKeys: this.manifestKeys,
    };
  }
}

interface PendingArchive {
  info: ObjectInfo;
  stem: string;
  parentId?: string;
  sidecarKey?: string;
}

function buildArchive(source: string, pending: PendingArchive): Backup {
  const { info, stem } = pending;
  const fromName = createdFromName(info.key);
  const backup: Backup = {
    id: joinId(source, info.key),
    source,
    series: seriesOf(parentPrefix(info.key) + stem),
    kind: 'archive',
    key: info.key,
    name: baseName(info.key),
    createdAt: fromName ?? info.lastModified,
    createdFrom: fromName ? 'name' : 'mtime',
    objects: 1,
    bytes: info.size,
    members: [toObject(info, baseName(info.key))],
    manifestKeys: [],
  };
  if (pending.sidecarKey !== undefined) backup.sidecarKey = pending.sidecarKey;
  if (pending.parentId !== undefined) backup.parentId = pending.parentId;
  return backup;
}

export interface CatalogueStats {
  objects: number;
  /** Objects that belong to no backup (loose files that are not archives). */
  ignored: number;
  ignoredExamples: string[];
}

/**
 * Groups a store's listing into backups, streaming: the listing arrives in key order, so a
 * directory backup's objects and an archive's sidecar are contiguous and each backup is
 * emitted as soon as the listing has moved past it. Only the backup being assembled is held.
 */
export async function* catalogue(store: ObjectStore, stats?: CatalogueStats): AsyncGenerator<Backup> {
  const source = store.url;
  const counters = stats ?? { objects: 0, ignored: 0, ignoredExamples: [] };
  let directory: DirectoryBuilder | undefined;
  const archives: PendingArchive[] = [];
  // Loose files wait here until a SHA256SUMS in one of their folders makes that folder a backup.
  const loose: ObjectInfo[] = [];
  const LOOSE_LIMIT = 100_000;

  const ignore = (info: ObjectInfo) => {
    counters.ignored++;
    if (counters.ignoredExamples.length < 5) counters.ignoredExamples.push(info.key);
  };

  function* flushArchives(key: string | undefined): Generator<Backup> {
    while (archives.length > 0) {
      const pending = archives[archives.length - 1] as PendingArchive;
      if (key?.startsWith(pending.info.key)) return;
      archives.pop();
      if (directory && pending.parentId === joinId(source, directory.prefix)) directory.nested.push(pending);
      else yield buildArchive(source, pending);
    }
  }

  function* flushDirectory(): Generator<Backup> {
    if (!directory) return;
    const done = directory;
    directory = undefined;
    yield done.build(source);
    for (const pending of done.nested) {
      const archive = buildArchive(source, pending);
      archive.manifestKeys = done.manifestKeys.filter((m) => archive.key.startsWith(parentPrefix(m)));
      yield archive;
    }
  }

  function flushLoose(key: string | undefined): void {
    let kept = 0;
    for (const info of loose) {
      if (key !== undefined && kept < LOOSE_LIMIT && stillAdoptable(info.key, key)) loose[kept++] = info;
      else if (archiveFormatOf(baseName(info.key)) === undefined) ignore(info);
    }
    loose.length = kept;
  }

  for await (const info of store.list()) {
    counters.objects++;
    const key = info.key;
    // Generators are made only when there is something to flush: this loop runs once per object.
    if (archives.length > 0) yield* flushArchives(key);
    if (directory && !key.startsWith(directory.prefix)) yield* flushDirectory();
    if (loose.length > 0) flushLoose(key);

    const name = baseName(key);
    if (!directory) {
      const timestamped = timestampedDirectoryOf(key);
      if (timestamped) directory = new DirectoryBuilder(timestamped);
      else if (name === MANIFEST_NAME) {
        directory = new DirectoryBuilder(parentPrefix(key));
        const prefix = directory.prefix;
        for (const l of loose) if (l.key.startsWith(prefix)) directory.add(l);
        const rest = loose.filter((l) => !l.key.startsWith(prefix));
        loose.length = 0;
        loose.push(...rest);
      }
    }
    if (directory) directory.add(info);

    if (name.endsWith(SIDECAR_SUFFIX)) {
      const target = key.slice(0, -SIDECAR_SUFFIX.length);
      const pending = archives.find((a) => a.info.key === target);
      if (pending) {
        pending.sidecarKey = key;
        continue;
      }
    }
    const format = archiveFormatOf(name);
    if (format) {
      const pending: PendingArchive = { info, stem: format.stem };
      if (directory) pending.parentId = joinId(source, directory.prefix);
      archives.push(pending);
    }
    if (!directory && name !== MANIFEST_NAME) loose.push(info);
  }
  yield* flushArchives(undefined);
  yield* flushDirectory();
  flushLoose(undefined);
}
