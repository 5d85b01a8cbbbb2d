/**
 * The sample backup folder behind `backup-validator demo`: healthy, damaged and stale backups of
 * every kind the contract names, made with Node alone (no tar/gzip/sqlite3 binaries) so the demo
 * behaves the same on every machine, and small enough to make in well under a second.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../core/errors.ts';
import { writeDamagedSamples } from './demo-damaged.ts';
import { writeHealthySamples } from './demo-healthy.ts';
import { assertUsableRoot, type DemoManifest, DemoWriter } from './demo-writer.ts';

export { type DemoBackup, type DemoManifest, demoStamp } from './demo-writer.ts';

/**
 * Makes the demo's sample backups in `root` (created; it must not exist or be empty) and says
 * what each one is and which findings the validator must report for it.
 */
export async function makeDemoBackups(root: string, options: { now?: Date } = {}): Promise<DemoManifest> {
  const now = options.now ?? new Date();
  if (Number.isNaN(now.getTime())) throw new UsageError('the demo reference time is not a valid date', 'now');
  const absoluteRoot = path.resolve(root);
  await assertUsableRoot(absoluteRoot);
  await mkdir(absoluteRoot, { recursive: true });

  const out = new DemoWriter(absoluteRoot, now);
  await writeHealthySamples(out);
  await writeDamagedSamples(out);
  return {
    root: absoluteRoot,
    now: now.toISOString(),
    backups: out.backups,
    files: out.files,
    bytes: out.bytes,
  };
}
