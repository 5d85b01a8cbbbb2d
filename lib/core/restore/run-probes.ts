import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { type Finding, finding } from '../findings.ts';
import { forEachLimited } from '../limit.ts';
import { RestoreAbort } from './abort.ts';
import type { RestoredFile } from './file-writer.ts';
import { probeMatches, runBuiltinProbe, runCustomProbe } from './probes.ts';
import type { RestoreRequest } from './request.ts';
import type { SandboxTree } from './sandbox-tree.ts';

/** The built-in probe of each restored file and each configured probe that matches it, four at once. */
export async function runProbes(
  request: RestoreRequest,
  tree: SandboxTree,
  findings: Finding[],
): Promise<void> {
  // Configured probes get HOME and TMPDIR in the sandbox, made after the restored tree was verified.
  const home = request.probes.length > 0 ? await mkdtemp(path.join(tree.root, '.probe-home-')) : undefined;
  try {
    await runProbeTasks(request, tree, findings, home);
  } finally {
    if (home) await rm(home, { recursive: true, force: true });
  }
}

async function runProbeTasks(
  request: RestoreRequest,
  tree: SandboxTree,
  findings: Finding[],
  home: string | undefined,
): Promise<void> {
  const tasks: Array<() => Promise<void>> = [];
  const failed = (file: RestoredFile, message: string) =>
    findings.push(
      finding('PROBE_FAILED', `"${file.path}": ${message}`, { backup: request.backup.id, object: file.path }),
    );
  for (const file of tree.files.values()) {
    if (file.linkOf !== undefined) continue;
    const absolute = tree.absolute(file.path);
    const builtin = file.probe;
    if (builtin) {
      tasks.push(async () => {
        const problem = await runBuiltinProbe(builtin, absolute, file.size);
        if (problem) failed(file, problem);
      });
    }
    for (const probe of request.probes) {
      if (!probeMatches(probe.match, file.path)) continue;
      tasks.push(async () => {
        const problem = await runCustomProbe(probe, absolute, tree.root, {
          ...(request.signal ? { signal: request.signal } : {}),
          ...(home ? { home } : {}),
        });
        if (problem) failed(file, problem);
      });
    }
  }
  await forEachLimited(tasks, 4, async (task) => {
    if (request.signal?.aborted) throw new RestoreAbort('RESTORE_FAILED', 'the restore was cancelled');
    await task();
  });
}

/** The files a built-in probe reads (a hard link's file is probed once, under its first name). */
export function builtinProbed(tree: SandboxTree): string[] {
  const probed: string[] = [];
  for (const file of tree.files.values()) if (file.probe && file.linkOf === undefined) probed.push(file.path);
  return probed;
}

/**
 * The files to verify before the built-in probes may start beside the rest of the verification:
 * every file in a probed file's folder (SQLite may open its -wal, -journal and -shm beside it, and
 * a database it must open read-write is changed on closing) and every hard link into such a folder.
 */
export function verifiedBeforeBuiltinProbes(tree: SandboxTree): (file: RestoredFile) => boolean {
  const folders = new Set(builtinProbed(tree).map((file) => path.posix.dirname(file)));
  return (file) =>
    folders.has(path.posix.dirname(file.path)) ||
    (file.linkOf !== undefined && folders.has(path.posix.dirname(file.linkOf)));
}
