import { checkIntegrityConfirmed } from '../confirm.ts';
import type { RestoreResult } from '../model.ts';
import type { ChecksumHistory, ObjectStore } from '../ports.ts';
import { type RestoreJob, requestFromJob } from './launcher.ts';
import { type RestoreRequest, restoreBackup } from './restore.ts';

// Apart from launcher.ts so that the Lambdas, which use the job's shape, do not bundle the probes' native SQLite.

/**
 * One sandbox job: for a backup the integrity Lambda left to the sandbox (too large for 15
 * minutes), the integrity check first, whose digests the restore then verifies against.
 */
export async function runSandboxJob(
  job: RestoreJob,
  deps: Pick<RestoreRequest, 'root' | 'signal' | 'onProgress'> & {
    store: ObjectStore;
    history?: ChecksumHistory;
  },
): Promise<RestoreResult> {
  const request = { ...requestFromJob(job), store: deps.store, root: deps.root };
  if (deps.signal) request.signal = deps.signal;
  if (deps.onProgress) request.onProgress = deps.onProgress;
  if (deps.history) request.history = deps.history;
  if (!job.checkIntegrity) return restoreBackup(request);
  const integrity = await checkIntegrityConfirmed(request.backup, deps.store, {
    policy: job.policy,
    ...(job.archivePatterns ? { archivePatterns: job.archivePatterns } : {}),
    ...(deps.history ? { history: deps.history } : {}),
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
  const result = await restoreBackup({ ...request, objectSha256: integrity.objectSha256 });
  return { ...result, integrity };
}
