import { effectiveRestoreLimits } from '../config.ts';
import { type Finding, finding, statusOfFindings, withinBudget } from '../findings.ts';
import type { RestoreResult } from '../model.ts';
import { humanTime } from '../units.ts';
import { RestoreLimits } from './limits.ts';
import type { RestoreRequest } from './request.ts';
import { restoreArchive } from './restore-archive.ts';
import { restoreDirectory } from './restore-directory.ts';
import { failureFinding } from './restore-outcome.ts';
import { builtinProbed, runProbes, verifiedBeforeBuiltinProbes } from './run-probes.ts';
import { emptyFolder, prepareRoot, removeUnprobed } from './sandbox-root.ts';
import { SandboxTree } from './sandbox-tree.ts';
import { compareWithReferences, verifyOnDisk } from './verify-restored.ts';

export type { RestorePhase, RestoreProgress, RestoreRequest } from './request.ts';

/**
 * Restores one backup into an empty sandbox root and proves it usable: safe extraction
 * under limits, every file hashed while written and again on disk, compared with the
 * catalogue and every reference checksum, then the application probes. Never a PASS for
 * what could not be restored or verified.
 */
export async function restoreBackup(request: RestoreRequest): Promise<RestoreResult> {
  const { backup, policy } = request;
  const findings: Finding[] = [];
  const phases = { downloadMs: 0, extractMs: 0, verifyMs: 0, probesMs: 0, cleanupMs: 0 };
  const tree = new SandboxTree(request.root);
  const where = { backup: backup.id };
  const started = performance.now();
  let completed = false;
  let early: Promise<void> | undefined;
  // Built-in probes started during the verification, and what they found (see below).
  let probing: Promise<void> | undefined;
  const probeFindings: Finding[] = [];
  let verified = false;
  try {
    await prepareRoot(tree.root);
    const limits = new RestoreLimits(effectiveRestoreLimits(policy));
    if (backup.kind === 'archive') await restoreArchive(request, tree, limits, phases, findings);
    else await restoreDirectory(request, tree, limits, phases, findings);

    request.onProgress?.({ phase: 'verify', bytes: limits.bytes, files: tree.files.size });
    const verifyStarted = performance.now();
    if (request.probes.length === 0) {
      // Only built-in probes, which read their file and its folder: they start once those are
      // verified, beside the rest of the verification; their findings still come after its own.
      await verifyOnDisk(tree, backup, findings, {
        files: verifiedBeforeBuiltinProbes(tree),
        verified: () => {
          probing = runProbes(request, tree, probeFindings);
          probing.catch(() => undefined);
        },
      });
    } else await verifyOnDisk(tree, backup, findings);
    await compareWithReferences(request, tree, findings);
    phases.verifyMs = performance.now() - verifyStarted;
    verified = true;

    request.onProgress?.({ phase: 'probes', bytes: limits.bytes, files: tree.files.size });
    // With built-in probes only, the time they take beyond the verification.
    const probesStarted = performance.now();
    // With no configured probe, what the built-in ones do not read is removed meanwhile (not timed as the restore).
    if (!request.keep && request.probes.length === 0) early = removeUnprobed(tree.root, builtinProbed(tree));
    if (probing) {
      await probing;
      findings.push(...probeFindings.splice(0));
    } else await runProbes(request, tree, findings);
    phases.probesMs = performance.now() - probesStarted;
    completed = true;
  } catch (error) {
    // Nothing may still be writing, or probing, when the sandbox is cleaned.
    await tree.settle();
    await probing?.catch(() => undefined);
    // As when the probes ran after the verification: theirs only once it was done.
    if (verified) findings.push(...probeFindings);
    // Archive damage names the archive, as the integrity pass does, so the report says it once.
    const archive = backup.kind === 'archive' ? (backup.members[0]?.path ?? backup.name) : undefined;
    findings.push(failureFinding(error, backup.id, tree.root, archive));
  }
  const durationMs = performance.now() - started;
  if (completed && policy.rtoMinutes > 0 && durationMs > policy.rtoMinutes * 60_000) {
    findings.push(
      finding(
        'RTO_EXCEEDED',
        `the restore took ${humanTime(durationMs)}, longer than the series' RTO of ${humanTime(policy.rtoMinutes * 60_000)}: a real recovery would miss its target; speed up the restore path or revisit the RTO`,
        where,
      ),
    );
  }
  let filesRestored = 0;
  let bytesRestored = 0;
  for (const file of tree.files.values()) {
    filesRestored += 1;
    bytesRestored += file.size;
  }
  if (completed && bytesRestored === 0 && !findings.some((f) => f.code === 'EMPTY_BACKUP')) {
    // The failure these operators were burned by: a backup that restores "fine" into nothing.
    const object = backup.kind === 'archive' ? (backup.members[0]?.path ?? backup.name) : undefined;
    findings.push(
      finding(
        'EMPTY_BACKUP',
        `the restore produced no file content (${filesRestored} files, 0 bytes): there is nothing to recover from this backup; check the backup job's source`,
        object === undefined ? where : { ...where, object },
      ),
    );
  }
  if (!request.keep) {
    request.onProgress?.({ phase: 'cleanup', bytes: bytesRestored, files: filesRestored });
    const cleanupStarted = performance.now();
    try {
      await early;
      await emptyFolder(tree.root);
    } catch (error) {
      findings.push(
        finding(
          'RESTORE_FAILED',
          `the sandbox ${tree.root} could not be cleaned after the restore: ${(error as Error).message}; remove it by hand`,
          where,
        ),
      );
    }
    phases.cleanupMs = performance.now() - cleanupStarted;
  }
  const kept = withinBudget(findings);
  return {
    backupId: backup.id,
    status: statusOfFindings(kept),
    durationMs: Math.round(durationMs),
    filesRestored,
    bytesRestored,
    phases: {
      downloadMs: Math.round(phases.downloadMs),
      extractMs: Math.round(phases.extractMs),
      verifyMs: Math.round(phases.verifyMs),
      probesMs: Math.round(phases.probesMs),
      cleanupMs: Math.round(phases.cleanupMs),
    },
    findings: kept,
  };
}
