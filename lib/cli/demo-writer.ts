/** Where the demo's samples go: the folder check, the writer that counts what it writes, and the manifest it builds. */
import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { seriesNameOf } from '../core/catalogue.ts';
import { archiveFormatOf } from '../core/compression.ts';
import { UsageError } from '../core/errors.ts';
import type { FindingCode } from '../core/findings.ts';
import { sha256Hex } from './demo-content.ts';

export interface DemoBackup {
  /** Key relative to the demo root, `/`-separated; a directory backup ends with `/`, as the catalogue keys it. */
  path: string;
  kind: 'archive' | 'directory';
  /** The series' name inside the demo folder (its id is the folder followed by this name). */
  series: string;
  /** The time in the backup's name (ISO-8601, UTC). */
  createdAt: string;
  /**
   * Finding codes the validator must report for this backup (RPO_EXCEEDED is reported for its
   * series); empty for a healthy backup. The run may add consequences (a skipped restore) beside them.
   */
  expect: FindingCode[];
  description: string;
  /** For an archive found inside a directory backup: that directory backup's path. */
  parent?: string;
}

export interface DemoManifest {
  /** Absolute path of the folder made. */
  root: string;
  /** The reference time the names were made from (ISO-8601). */
  now: string;
  backups: DemoBackup[];
  /** Files written and their total size. */
  files: number;
  bytes: number;
}

const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** `20250625_114622`, UTC: the form the catalogue reads back from names. */
export function demoStamp(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}_${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

export async function assertUsableRoot(root: string): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(root)).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new UsageError(`cannot use ${root} for the demo backups: ${(error as Error).message}`, undefined, {
      cause: error,
    });
  }
  if (!isDirectory) {
    throw new UsageError(`${root} exists and is not a folder; give the demo a new or empty folder`);
  }
  const entries = await readdir(root);
  if (entries.length > 0) {
    throw new UsageError(
      `${root} is not empty (${entries.length} entries); the demo writes its sample backups only into a new or empty folder, so nothing of yours is overwritten: give another path`,
    );
  }
}

function archiveSeries(key: string): string {
  const slash = key.lastIndexOf('/');
  const name = key.slice(slash + 1);
  const format = archiveFormatOf(name);
  return seriesNameOf(key.slice(0, slash + 1) + (format?.stem ?? name));
}

/** Writes the sample files below `root`, dated as each backup was made, and records each backup made. */
export class DemoWriter {
  files = 0;
  bytes = 0;
  readonly backups: DemoBackup[] = [];
  constructor(
    readonly root: string,
    readonly now: Date,
  ) {}

  /** `ms` before the reference time, to the second (names carry no fractions). */
  ago(ms: number): Date {
    return new Date(Math.floor((this.now.getTime() - ms) / 1000) * 1000);
  }

  async write(relative: string, content: Buffer | string, mtime: Date): Promise<void> {
    const file = path.join(this.root, ...relative.split('/'));
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
    await utimes(file, mtime, mtime);
    this.files++;
    this.bytes += typeof content === 'string' ? Buffer.byteLength(content) : content.length;
  }

  /**
   * Writes an archive backup and its `<name>.sha256` sidecar (of `sample.sidecar.of`, the archive
   * itself by default) and records it with what the validator must find.
   */
  async archive(
    name: string,
    content: Buffer,
    at: Date,
    sample: Pick<DemoBackup, 'expect' | 'description'> & { sidecar?: { of?: Buffer; bare?: boolean } },
  ): Promise<void> {
    await this.write(name, content, at);
    const hex = sha256Hex(sample.sidecar?.of ?? content);
    await this.write(`${name}.sha256`, sample.sidecar?.bare ? `${hex}\n` : `${hex}  ${name}\n`, at);
    this.record({
      path: name,
      kind: 'archive',
      createdAt: at.toISOString(),
      expect: sample.expect,
      description: sample.description,
    });
  }

  record(backup: Omit<DemoBackup, 'series'>): void {
    const series =
      backup.kind === 'directory' ? seriesNameOf(backup.path.replace(/\/$/, '')) : archiveSeries(backup.path);
    this.backups.push({ ...backup, series });
  }
}
