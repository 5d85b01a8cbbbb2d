/**
 * Where a restore bench writes: tmpfs, a new ext4 file system per side and round, or this
 * machine's disk, and how each is emptied between rounds.
 */
import { spawn } from 'node:child_process';
import { mkdir, rm, statfs } from 'node:fs/promises';
import path from 'node:path';

export function runCommand(command: string, args: string[], cwd?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(cwd ? { cwd } : {}) });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`${command} ${args.join(' ')} exited with ${code}: ${stderr.trim()}`));
      else resolve(Number(process.hrtime.bigint() - started) / 1e6);
    });
  });
}

/** Where one side of one round writes, and how it is cleared afterwards. */
export interface Place {
  name: string;
  rounds: number;
  /** An empty folder for `side` in `round`. */
  prepare(side: string, round: number): Promise<string>;
  release(folder: string): Promise<void>;
  finish(): Promise<void>;
}

export function tmpfsPlace(scratch: string, rounds: number): Place {
  return emptiedPlace('tmpfs', scratch, rounds);
}

/** A folder per side under `scratch`, emptied before and after each round. */
export function emptiedPlace(name: string, scratch: string, rounds: number): Place {
  return {
    name,
    rounds,
    async prepare(side) {
      const folder = path.join(scratch, side);
      await rm(folder, { recursive: true, force: true });
      await mkdir(folder, { recursive: true });
      return folder;
    },
    release: (folder) => rm(folder, { recursive: true, force: true }),
    finish: () => rm(scratch, { recursive: true, force: true }),
  };
}

/**
 * A new ext4 file system per side and round, or why there cannot be one here. With a journal as
 * a restore task's new volume has; without one (and with `discard`) as this machine's own disk,
 * minus its history: no inode freed minutes ago for ext4 to step over (see workingDiskPlace).
 */
export async function freshExt4Place(
  scratch: string,
  bytes: number,
  options: { rounds: number; journal: boolean },
): Promise<Place | string> {
  if (process.getuid?.() !== 0) return 'not root (mount needs it)';
  // Room as a restore volume has (a Fargate task's is 20 GiB at least): filled to 60%, ext4 cost
  // the CLI's restore 5.7-7.3 s against 4.6-5.5 s with three times the data (tar 8.3-9.4 s, 7.9-10.2 s).
  const imageBytes = Math.ceil((bytes * 3 + 256 * 1024 * 1024) / 4096) * 4096;
  const room = await statfs(path.dirname(scratch));
  if (room.bavail * room.bsize < imageBytes * 1.2) return `less than ${imageBytes} bytes free for the image`;
  const mounts = new Map<string, string>();
  const place: Place = {
    name: options.journal ? 'fresh ext4' : 'fresh ext4 without a journal',
    rounds: options.rounds,
    async prepare(side, round) {
      await mkdir(scratch, { recursive: true });
      const image = path.join(scratch, `${side}-${round}.img`);
      const mountPoint = path.join(scratch, `${side}-${round}`);
      await rm(image, { force: true });
      await runCommand('truncate', ['-s', String(imageBytes), image]);
      // Inode tables and journal written now, not by a kernel thread during the timed work.
      await runCommand('mkfs.ext4', [
        '-q',
        '-F',
        ...(options.journal ? [] : ['-O', '^has_journal']),
        '-E',
        options.journal ? 'lazy_itable_init=0,lazy_journal_init=0' : 'lazy_itable_init=0',
        image,
      ]);
      await mkdir(mountPoint, { recursive: true });
      await runCommand('mount', ['-o', options.journal ? 'loop' : 'loop,discard', image, mountPoint]);
      mounts.set(mountPoint, image);
      const folder = path.join(mountPoint, 'work');
      await mkdir(folder);
      return folder;
    },
    async release(folder) {
      const mountPoint = path.dirname(folder);
      const image = mounts.get(mountPoint);
      if (image === undefined) return;
      await runCommand('umount', [mountPoint]);
      mounts.delete(mountPoint);
      await rm(image, { force: true });
    },
    async finish() {
      for (const mountPoint of mounts.keys()) await runCommand('umount', [mountPoint]).catch(() => 0);
      mounts.clear();
      await rm(scratch, { recursive: true, force: true });
    },
  };
  try {
    await place.release(await place.prepare('probe', 0));
    return place;
  } catch (error) {
    await place.finish();
    return `cannot make one here: ${(error as Error).message}`;
  }
}

/**
 * Every side of every round in a folder of its own on this machine's disk, deleted at the end.
 * The disk has no journal, so ext4 checks every free inode it might hand out against recent
 * deletions (`recently_deleted()` in fs/ext4/ialloc.c: freed within 60 s, or 360 s while the inode
 * table block is dirty) and steps over them one by one, from the start of the group, for every
 * new file. Right after 20,000 files were deleted nearby, that check took 55% of `tar -xzf`'s
 * samples in perf, and the same `tar -xzf` took 5.5 s into never-used inodes and 10-20 s into
 * freed ones; 75 s of idle did not clear it. So nothing is deleted here until the end.
 */
export function workingDiskPlace(scratch: string, rounds: number): Place {
  return {
    name: 'working disk',
    rounds,
    async prepare(side, round) {
      const folder = path.join(scratch, `${side}-${round}`);
      await rm(folder, { recursive: true, force: true });
      await mkdir(folder, { recursive: true });
      return folder;
    },
    release: async () => undefined,
    finish: () => rm(scratch, { recursive: true, force: true }),
  };
}
