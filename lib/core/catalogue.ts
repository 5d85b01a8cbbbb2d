import { type ArchiveFormat, archiveFormatOf } from './compression.ts';
import { archiveByPattern } from './inspect/sniff.ts';
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

/**
 * A series' name inside its source: the backup's path with the timestamps and archive suffix
 * taken out; '' for backups named by a timestamp alone at the source's root.
 */
export function seriesNameOf(pathWithoutSuffix: string): string {
  return pathWithoutSuffix
    .split('/')
    .map((segment) => withoutTimestamps(segment))
    .filter((segment) => segment.length > 0)
    .join('/');
}

/**
 * A series' id, its key everywhere (ledger, baselines, selection, history): the source followed
 * by the name, so two sources never share a series; a root series is the source itself.
 */
export function seriesIdOf(source: string, name: string): string {
  const root = source.replace(/\/+$/, '') || source;
  return name === '' ? root : `${root}/${name}`;
}

/** The series a backup of `source` at this path (without archive suffix) belongs to. */
export function seriesOf(source: string, pathWithoutSuffix: string): string {
  return seriesIdOf(source, seriesNameOf(pathWithoutSuffix));
}

/**
 * How people read series ids in a run's tables: without the folders all the run's sources share
 * above them (`/srv/prod/backups/db` and `/srv/staging/backups/db` read `prod/backups/db` and
 * `staging/backups/db`; one source `/srv/backups` reads `backups/db` and `backups`).
 */
export function seriesLabeller(sources: readonly string[]): (series: string) => string {
  const parents = sources.map((s) => {
    const root = s.replace(/\/+$/, '');
    return root.slice(0, root.lastIndexOf('/') + 1);
  });
  let common = parents[0] ?? '';
  for (const parent of parents) {
    while (!parent.startsWith(common))
      common = common.slice(0, common.lastIndexOf('/', common.length - 2) + 1);
  }
  return (series) =>
    series.startsWith(common) && series.length > common.length ? series.slice(common.length) : series;
}

/** A key naming a folder (an empty folder, or an S3 "folder/" marker): never an object of a backup. */
export function isFolderMarker(key: string): boolean {
  return key.endsWith('/');
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

  /** A folder marker inside the backup: not a member, but part of the backup's time. */
  touch(info: ObjectInfo): void {
    this.newest = Math.max(this.newest, info.lastModified.getTime());
  }

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
      series: seriesOf(source, bare),
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
    series: seriesOf(source, parentPrefix(info.key) + stem),
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
  /** `<archive>.sha256` sidecars with no archive beside them and in no backup (the first ORPHAN_LIMIT). */
  orphanReferences?: string[];
  /** How many such sidecars there were in all. */
  orphans?: number;
}

/** How many of the last keys listed a sidecar's file is looked for in. */
const RECENT_KEYS = 64;

/** Orphan sidecars named one by one; beyond this they are counted. */
export const ORPHAN_LIMIT = 100;

export interface CatalogueOptions {
  /** `archives.patterns` of the configuration: objects that are archives whatever their suffix. */
  archivePatterns?: readonly string[];
}

/**
 * Groups a store's listing into backups, streaming: the listing arrives in key order, so a
 * directory backup's objects and an archive's sidecar are contiguous and each backup is
 * emitted as soon as the listing has moved past it. Only the backup being assembled is held.
 */
export async function* catalogue(
  store: ObjectStore,
  stats?: CatalogueStats,
  options: CatalogueOptions = {},
): AsyncGenerator<Backup> {
  const source = store.url;
  const patterns = options.archivePatterns ?? [];
  // Named like an archive, or by one of the configured patterns (format then told by the bytes).
  const archiveFormat = (key: string): ArchiveFormat | undefined =>
    archiveFormatOf(baseName(key)) ?? archiveByPattern(key, patterns);
  const counters = stats ?? { objects: 0, ignored: 0, ignoredExamples: [] };
  let directory: DirectoryBuilder | undefined;
  const archives: PendingArchive[] = [];
  // Loose files wait here until a SHA256SUMS in one of their folders makes that folder a backup.
  const loose: ObjectInfo[] = [];
  const LOOSE_LIMIT = 100_000;

  // A file's sidecar follows it closely in key order: only keys that extend the file's own lie between.
  const recentKeys: string[] = [];
  const sidecarsWithoutTarget = new Set<string>();

  const ignore = (info: ObjectInfo) => {
    counters.ignored++;
    if (counters.ignoredExamples.length < 5) counters.ignoredExamples.push(info.key);
  };
  const orphan = (info: ObjectInfo) => {
    counters.orphans = (counters.orphans ?? 0) + 1;
    counters.orphanReferences ??= [];
    if (counters.orphanReferences.length < ORPHAN_LIMIT) counters.orphanReferences.push(info.key);
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
      else if (sidecarsWithoutTarget.delete(info.key)) orphan(info);
      else if (archiveFormat(info.key) === undefined) ignore(info);
    }
    loose.length = kept;
  }

  for await (const info of store.list()) {
    const key = info.key;
    const marker = isFolderMarker(key);
    if (!marker) counters.objects++;
    // Generators are made only when there is something to flush: this loop runs once per object.
    if (archives.length > 0) yield* flushArchives(key);
    if (directory && !key.startsWith(directory.prefix)) yield* flushDirectory();
    if (loose.length > 0) flushLoose(key);
    if (marker) {
      // A timestamped folder holding nothing but (empty) folders is still a backup: an empty one.
      if (!directory) {
        const timestamped = timestampedDirectoryOf(key);
        if (timestamped) directory = new DirectoryBuilder(timestamped);
      }
      directory?.touch(info);
      if (info.size > 0) ignore(info);
      continue;
    }

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
      if (!directory && !recentKeys.includes(target)) sidecarsWithoutTarget.add(key);
    }
    const format = archiveFormat(key);
    if (format) {
      const pending: PendingArchive = { info, stem: format.stem };
      if (directory) pending.parentId = joinId(source, directory.prefix);
      archives.push(pending);
    }
    if (!directory && name !== MANIFEST_NAME) loose.push(info);
    recentKeys.push(key);
    if (recentKeys.length > RECENT_KEYS) recentKeys.shift();
  }
  yield* flushArchives(undefined);
  yield* flushDirectory();
  flushLoose(undefined);
}
