import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { POOLED_MAX_BYTES, pooledConcurrency } from '../../lib/adapters/integrity-pool.ts';
import type { CliIo } from '../../lib/cli/io.ts';
import { attachIntegrityWorkers, type OpenedContext } from '../../lib/cli/run-context.ts';
import type { Backup } from '../../lib/core/model.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';
import { compiledCli } from '../support/cli.ts';

/**
 * Issue 13: the CLI's integrity worker threads start only for runs of many small folder backups
 * (2 a core), and only then, with no --concurrency and no large backup, does integrity keep more
 * backups in flight than the cores.
 */
let io: CliIo;

beforeAll(async () => {
  const entry = join(dirname(await compiledCli()), 'integrity-worker.mjs');
  io = {
    stdout: process.stdout,
    stderr: process.stderr,
    cwd: process.cwd(),
    env: {},
    integrityWorker: entry,
  };
}, 180_000);

const opened = () => ({ ctx: {} as StageContext }) as OpenedContext;
const backup = (n: number, bytes = 100) => ({ id: `b${n}`, bytes }) as Backup;
const enough = 2 * availableParallelism();

describe('issue 13: when the integrity worker threads start', () => {
  it('at 2 small backups a core, and then integrity keeps 4 a core in flight (none on one core)', async () => {
    const run = opened();
    const workers = await attachIntegrityWorkers(io, run, undefined);
    if (availableParallelism() < 2) {
      expect(workers).toBeUndefined();
      return;
    }
    try {
      for (let n = 1; n < enough; n++) run.ctx.events?.discovered?.(backup(n));
      expect(run.ctx.integrityPasses).toBeUndefined();
      expect(workers?.inFlight()).toBeUndefined();
      run.ctx.events?.discovered?.(backup(enough));
      expect(run.ctx.integrityPasses).toBeDefined();
      expect(workers?.inFlight()).toBe(pooledConcurrency());
      expect(pooledConcurrency()).toBe(4 * availableParallelism());
    } finally {
      await workers?.close();
    }
  });

  it('keep the default in flight beside a large backup, and the user’s --concurrency', async () => {
    if (availableParallelism() < 2) return;
    const mixed = opened();
    const withLarge = await attachIntegrityWorkers(io, mixed, undefined);
    const given = opened();
    const withConcurrency = await attachIntegrityWorkers(io, given, 3);
    try {
      mixed.ctx.events?.discovered?.(backup(0, POOLED_MAX_BYTES + 1));
      for (let n = 1; n <= enough; n++) {
        mixed.ctx.events?.discovered?.(backup(n));
        given.ctx.events?.discovered?.(backup(n));
      }
      expect(mixed.ctx.integrityPasses).toBeDefined();
      expect(withLarge?.inFlight()).toBeUndefined();
      expect(given.ctx.integrityPasses).toBeDefined();
      expect(withConcurrency?.inFlight()).toBeUndefined();
    } finally {
      await withLarge?.close();
      await withConcurrency?.close();
    }
  });

  it('start none one at a time, or without the compiled entry', async () => {
    expect(await attachIntegrityWorkers(io, opened(), 1)).toBeUndefined();
    const { integrityWorker: _entry, ...sources } = io;
    expect(await attachIntegrityWorkers(sources, opened(), undefined)).toBeUndefined();
  });
});
