import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { IntegrityPool } from '../../lib/adapters/integrity-pool.ts';
import { WorkerPool } from '../../lib/adapters/worker-pool.ts';
import { abortableStore } from '../../lib/core/abortable-store.ts';
import { DEFAULT_POLICY } from '../../lib/core/config.ts';
import { checkIntegrityConfirmed } from '../../lib/core/confirm.ts';
import type { Backup, IntegrityResult } from '../../lib/core/model.ts';
import type { ObjectStore } from '../../lib/core/ports.ts';
import {
  archiveBackupOf,
  directoryBackupOf,
  gzip,
  MemoryChecksumHistory,
  makeTempDir,
  packTar,
  sha256Hex,
  sha256sums,
  truncateAt,
  writeTree,
} from '../support/archives.ts';
import { compiledCli } from '../support/cli.ts';

/**
 * Issue 13: the integrity passes of small folder backups run in worker threads (the compiled CLI's
 * bundled entry) and must answer exactly as the pass on the main thread does, first-seen records
 * included; the pool under them keeps its queue bounded, answers aborts and survives a dead worker.
 */
let dir: string;
let entry: string;

beforeAll(async () => {
  dir = await makeTempDir('bv-integrity-pool-');
  entry = join(dirname(await compiledCli()), 'integrity-worker.mjs');
}, 180_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Everything of a result but its duration, which no two passes share. */
function comparable(result: IntegrityResult): Omit<IntegrityResult, 'durationMs'> {
  const { durationMs: _duration, ...rest } = result;
  return rest;
}

function recorded(history: MemoryChecksumHistory) {
  return [...history.records].map(([id, { firstSeenAt: _at, ...record }]) => [id, record]).sort();
}

describe('issue 13: integrity passes in worker threads', () => {
  it('give the same results and first-seen records as the main thread, on a first and a second run', async () => {
    const root = join(dir, 'source');
    await mkdir(root);
    const good = gzip(await packTar([{ name: 'a.txt', content: 'alpha\n' }]));
    const unreferenced = gzip(await packTar([{ name: 'b.txt', content: 'beta\n' }]));
    const mismatched = gzip(await packTar([{ name: 'c.txt', content: 'gamma\n' }]));
    const truncated = truncateAt(
      gzip(await packTar([{ name: 'd.txt', content: 'delta\n'.repeat(500) }])),
      200,
    );
    const tree = { 'one.txt': 'one\n', 'two.txt': 'two\n' };
    await writeTree(join(root, 'dir'), {
      ...tree,
      'two.txt': 'changed\n',
      'three.txt': 'unlisted\n',
      SHA256SUMS: sha256sums(tree),
    });
    await writeFile(join(root, 'good.tar.gz'), good);
    await writeFile(join(root, 'good.tar.gz.sha256'), `${sha256Hex(good)}  good.tar.gz\n`);
    await writeFile(join(root, 'unreferenced.tar.gz'), unreferenced);
    await writeFile(join(root, 'mismatched.tar.gz'), mismatched);
    await writeFile(join(root, 'mismatched.tar.gz.sha256'), `${sha256Hex(good)}  mismatched.tar.gz\n`);
    await writeFile(join(root, 'truncated.tar.gz'), truncated);

    const store = new FolderStore(root);
    const backups: Backup[] = [
      await archiveBackupOf(store, 'good.tar.gz'),
      await archiveBackupOf(store, 'unreferenced.tar.gz'),
      await archiveBackupOf(store, 'mismatched.tar.gz'),
      await archiveBackupOf(store, 'truncated.tar.gz'),
      await directoryBackupOf(store, 'dir/'),
    ];
    const here = new MemoryChecksumHistory();
    const there = new MemoryChecksumHistory();
    const pool = new IntegrityPool({ entry, concurrency: 4, folderOf: (s) => s.url });
    try {
      for (const round of [1, 2]) {
        for (const backup of backups) {
          const expected = await checkIntegrityConfirmed(backup, store, {
            policy: DEFAULT_POLICY,
            history: here,
          });
          const pass = pool.check(backup, store, { policy: DEFAULT_POLICY, history: there });
          expect(pass, backup.id).toBeDefined();
          const actual = await (pass as Promise<IntegrityResult>);
          expect(comparable(actual), `${backup.id}, run ${round}`).toEqual(comparable(expected));
        }
        expect(recorded(there)).toEqual(recorded(here));
      }
      // The fixtures do reach the findings that matter here.
      expect(recorded(here).length).toBeGreaterThan(0);
    } finally {
      await pool.close();
    }
  });

  it('leaves to the main thread what a worker cannot open itself', async () => {
    const pool = new IntegrityPool({ entry, concurrency: 2, folderOf: () => undefined });
    const store = new FolderStore(dir);
    const backup = { bytes: 1 } as Backup;
    expect(pool.check(backup, store, { policy: DEFAULT_POLICY })).toBeUndefined();
    await pool.close();
  });

  it('takes no more passes than its workers run at once: the caller checks the others itself', async () => {
    const root = join(dir, 'lanes');
    await mkdir(root);
    await writeFile(join(root, 'y.tar.gz'), gzip(await packTar([{ name: 'y.txt', content: 'y\n' }])));
    const store = new FolderStore(root);
    const backup = await archiveBackupOf(store, 'y.tar.gz');
    // Three at once with two threads: one in each worker, the third on the caller's thread.
    const pool = new IntegrityPool({ entry, concurrency: 3, threads: 2, folderOf: (s) => s.url });
    try {
      const first = pool.check(backup, store, { policy: DEFAULT_POLICY });
      const second = pool.check(backup, store, { policy: DEFAULT_POLICY });
      expect(first).toBeDefined();
      expect(second).toBeDefined();
      expect(pool.check(backup, store, { policy: DEFAULT_POLICY })).toBeUndefined();
      expect((await first)?.status).toBe('WARN');
      expect((await second)?.status).toBe('WARN');
      const again = pool.check(backup, store, { policy: DEFAULT_POLICY });
      expect(again).toBeDefined();
      await again;
    } finally {
      await pool.close();
    }
  });

  it('an abort answers at once with the signal’s reason', async () => {
    const root = join(dir, 'abort');
    await mkdir(root);
    await writeFile(join(root, 'x.tar.gz'), gzip(await packTar([{ name: 'x.txt', content: 'x\n' }])));
    const store = new FolderStore(root);
    const backup = await archiveBackupOf(store, 'x.tar.gz');
    const pool = new IntegrityPool({ entry, concurrency: 2, folderOf: (s: ObjectStore) => s.url });
    const controller = new AbortController();
    const reason = new Error('stop');
    const pass = pool.check(backup, abortableStore(store, controller.signal), {
      policy: DEFAULT_POLICY,
      signal: controller.signal,
    });
    controller.abort(reason);
    await expect(pass).rejects.toBe(reason);
    await pool.close();
  });
});

/** A worker for the pool's own tests: doubles `n`, holds a job until aborted, or dies. */
const ECHO_WORKER = `
import { parentPort } from 'node:worker_threads';
parentPort.on('message', (m) => {
  if (m.type === 'abort') return parentPort.postMessage({ type: 'failed', id: m.id, error: 'aborted' });
  if (m.job.die) process.exit(7);
  if (m.job.hold) return;
  parentPort.postMessage({ type: 'progress', id: m.id, bytes: m.job.n });
  setImmediate(() => parentPort.postMessage({ type: 'done', id: m.id, outcome: m.job.n * 2 }));
});
`;

describe('issue 13: the worker pool', () => {
  let echo: string;
  beforeAll(async () => {
    echo = join(dir, 'echo-worker.mjs');
    await writeFile(echo, ECHO_WORKER);
  });

  type Job = { n: number; hold?: boolean; die?: boolean };
  const newPool = (maxWaiting: number) =>
    new WorkerPool<Job, number, string>(
      { entry: echo, size: 2, perWorker: 1, maxWaiting },
      (error) => new Error(error),
    );

  it('never lets more than maxWaiting jobs wait, whatever the callers submit; every job is answered in turn', async () => {
    const pool = newPool(3);
    const progress: number[] = [];
    try {
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, n) =>
          pool.run({ n }, { onProgress: (bytes) => progress.push(bytes) }),
        ),
      );
      expect(results).toEqual(Array.from({ length: 40 }, (_, n) => n * 2));
      expect(progress.sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, n) => n));
      expect(pool.peakWaiting).toBeGreaterThan(0);
      expect(pool.peakWaiting).toBeLessThanOrEqual(3);
    } finally {
      await pool.close();
    }
  });

  it('aborts a running job and a waiting one; the workers go on with the next', async () => {
    const pool = newPool(4);
    try {
      const controller = new AbortController();
      const held = [1, 2].map((n) => pool.run({ n, hold: true }, { signal: controller.signal }));
      const waiting = pool.run({ n: 3 }, { signal: controller.signal });
      controller.abort(new Error('enough'));
      for (const job of [...held, waiting]) await expect(job).rejects.toThrow('enough');
      expect(await pool.run({ n: 4 })).toBe(8);
    } finally {
      await pool.close();
    }
  });

  it('a worker that dies fails its job, and a new worker takes the next', async () => {
    const pool = newPool(4);
    try {
      await expect(pool.run({ n: 1, die: true })).rejects.toThrow(/worker thread stopped \(exit code 7\)/);
      expect(await pool.run({ n: 5 })).toBe(10);
    } finally {
      await pool.close();
    }
  });

  it('close() fails what is still waiting or running', async () => {
    const pool = newPool(4);
    const held = pool.run({ n: 1, hold: true });
    const closing = pool.close();
    await expect(held).rejects.toThrow('closed');
    await closing;
    await expect(pool.run({ n: 2 })).rejects.toThrow('closed');
  });
});
