import { createHash } from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ArchiveFormat, archiveFormatOf } from '../compression.ts';
import type { Finding } from '../findings.ts';
import { type CrcAlgorithm, createCrc } from '../inspect/crc.ts';
import {
  type ArchiveInspection,
  inspectArchive,
  matchesArchivePattern,
  readHead,
  sniffArchiveFormat,
} from '../inspect/index.ts';
import { forEachLimited } from '../limit.ts';
import type { BackupObject } from '../model.ts';
import { reportArchiveProblems } from '../references/archive.ts';
import { FindingList } from '../references/finding-list.ts';
import { finishReferences } from '../references/history.ts';
import {
  checkDirectoryNotEmpty,
  compareDirectoryManifests,
  readDirectoryManifests,
} from '../references/manifests.ts';
import { newState, type ObjectState } from '../references/object-state.ts';
import { compareStoreChecksum, crcOf, lookUpStoreChecksum } from '../references/store-checksums.ts';
import { RestoreAbort } from './abort.ts';
import type { RestoreLimits } from './limits.ts';
import { type Phases, PROGRESS_EVERY_BYTES, READ_HIGH_WATER_MARK, type RestoreRequest } from './request.ts';
import type { SandboxTree } from './sandbox-tree.ts';

/** Objects of a directory backup downloaded at once. */
export const DOWNLOAD_PARALLELISM = 8;

/** A directory backup: each object downloaded into the sandbox, hashed as it is written. */
export async function restoreDirectory(
  request: RestoreRequest,
  tree: SandboxTree,
  limits: RestoreLimits,
  phases: Phases,
  findings: Finding[],
): Promise<void> {
  const { backup, store } = request;
  const started = performance.now();
  const checked = new FindingList(backup.id);
  const manifests = await readDirectoryManifests(backup, store, checked, { signal: request.signal });
  const controller = new AbortController();
  const stop = () => controller.abort();
  request.signal?.addEventListener('abort', stop, { once: true });
  let downloaded = 0;
  let reported = 0;
  let firstError: unknown;
  const states: ObjectState[] = [];
  const downloadOne = async (member: BackupObject) => {
    const relative = tree.relative(member.path, 'object');
    limits.entry(relative);
    limits.declare(member.size, relative);
    const stored = await lookUpStoreChecksum(store, member, member.path, checked, request.signal);
    const opened = await store.open(member.key, { highWaterMark: READ_HIGH_WATER_MARK });
    const { source, archive } = await sniffMember(opened, member, request);
    const writer = tree.createFile(relative, limits);
    const hash = createHash('sha256');
    const crc = crcOf(stored) ? createCrc(crcOf(stored) as CrcAlgorithm) : undefined;
    let size = 0;
    await pipeline(
      source,
      async (chunks: AsyncIterable<Buffer>) => {
        for await (const chunk of chunks) {
          hash.update(chunk);
          crc?.update(chunk);
          size += chunk.length;
          writer.write(chunk);
          await archive?.write(chunk);
          await tree.ready();
          downloaded += chunk.length;
          if (downloaded - reported >= PROGRESS_EVERY_BYTES) {
            reported = downloaded;
            request.onProgress?.({ phase: 'download', bytes: downloaded, files: tree.files.size });
          }
        }
      },
      { signal: controller.signal },
    ).catch((error: unknown) => {
      archive?.abort();
      throw error;
    });
    writer.end();
    const state = newState(member);
    const inspection = await archive?.end();
    if (archive && inspection) {
      reportArchiveProblems(member.path, archive.format, inspection.problems, checked, () => member.path);
      if (inspection.problems.length > 0) state.damaged = true;
    }
    state.sha256 = hash.digest('hex');
    state.size = size;
    state.readFully = true;
    compareStoreChecksum(state, stored, crc?.digestBase64(), checked);
    states.push(state);
  };
  try {
    request.onProgress?.({ phase: 'download', bytes: 0, files: 0 });
    await forEachLimited(
      backup.members,
      DOWNLOAD_PARALLELISM,
      async (member) => {
        try {
          await downloadOne(member);
        } catch (error) {
          firstError ??= error;
          controller.abort();
        }
      },
      { signal: controller.signal },
    );
  } finally {
    request.signal?.removeEventListener('abort', stop);
  }
  if (firstError) throw firstError;
  if (request.signal?.aborted) throw new RestoreAbort('RESTORE_FAILED', 'the restore was cancelled');
  await tree.drain();
  phases.downloadMs = performance.now() - started;
  // The stored bytes as read, against every reference the integrity pass compares them with.
  states.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  await compareDirectoryManifests(backup, store, states, manifests, checked, { signal: request.signal });
  await finishReferences(backup, states, request.history, checked);
  checkDirectoryNotEmpty(backup, checked);
  findings.push(...checked.finish());
}

/** A file of a directory backup whose bytes are an archive, checked as one while it is downloaded. */
interface MemberArchive {
  format: ArchiveFormat;
  write(chunk: Buffer): Promise<void>;
  end(): Promise<ArchiveInspection | undefined>;
  abort(): void;
}

/**
 * As the integrity pass does: a file not named as an archive backup of its own whose first bytes
 * are gzip, zstd or tar is also read as an archive, so damage inside it is found by a restore too.
 */
async function sniffMember(
  opened: Readable,
  member: BackupObject,
  request: RestoreRequest,
): Promise<{ source: Readable; archive?: MemberArchive }> {
  const ownBackup =
    archiveFormatOf(member.path) !== undefined ||
    matchesArchivePattern(member.key, request.archivePatterns ?? []);
  if (ownBackup || member.size === 0) return { source: opened };
  const head = await readHead(opened);
  const format = sniffArchiveFormat(head.head, path.posix.basename(member.path));
  if (!format) return { source: head.stream };
  const feed = new PassThrough({ highWaterMark: READ_HIGH_WATER_MARK });
  const inspecting = inspectArchive(feed, format, {
    ...(request.signal ? { signal: request.signal } : {}),
    contentName: format.stem,
  });
  const settled = inspecting.then(
    () => undefined,
    () => undefined,
  );
  return {
    source: head.stream,
    archive: {
      format,
      async write(chunk) {
        if (!feed.write(chunk)) await Promise.race([once(feed, 'drain'), settled]);
      },
      async end() {
        feed.end();
        return inspecting.catch(() => undefined);
      },
      abort() {
        feed.destroy();
        inspecting.catch(() => {});
      },
    },
  };
}
