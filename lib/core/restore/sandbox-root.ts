import { spawn } from 'node:child_process';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { RestoreAbort } from './abort.ts';

/** The sandbox root must be empty, so nothing is mistaken for restored data. */
export async function prepareRoot(root: string): Promise<void> {
  await mkdir(root, { recursive: true });
  const present = await readdir(root);
  if (present.length > 0) {
    throw new RestoreAbort(
      'RESTORE_FAILED',
      `the sandbox root ${root} is not empty (${present.length} entries, e.g. "${present[0]}"): a restore needs an empty folder so nothing is mistaken for restored data`,
    );
  }
}
/** Removes what a restore left below its root (the root itself stays). */
export async function emptyFolder(root: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (names.length === 0) return;
  // coreutils rm deletes a 20,000-file tree faster and in far less memory than fs.rm's JS walk.
  const removed = await new Promise<boolean>((resolve) => {
    const child = spawn('rm', ['-rf', '--', ...names.map((name) => path.join(root, name))], {
      stdio: 'ignore',
    });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
  if (removed) return;
  await Promise.all(
    names.map((name) => rm(path.join(root, name), { recursive: true, force: true, maxRetries: 2 })),
  );
}
