import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import type { ObjectInfo } from '../../lib/core/model.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';
import { discoverStage, SHARD_LIMITS } from '../../lib/core/stages/discover.ts';
import { integrityStage } from '../../lib/core/stages/integrity.ts';
import { REDUNDANCY_CONCURRENCY, redundancyStage } from '../../lib/core/stages/redundancy.ts';
import { packTar } from '../support/archives.ts';
import { folderStageContext, freshLedger } from '../support/ledger.ts';

/** Issue 12: redundancy runs one shard per invocation (the state machine's Map), a few backups at once. */

let dir: string;
let ledger: DynamoDbLedger;
let ctx: StageContext;
const now = new Date('2025-06-26T12:00:00Z');

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bv-redundancy-shards-'));
  ledger = await freshLedger(() => now);
  ctx = folderStageContext(ledger, join(dir, 'runs'), () => now);
});

afterEach(async () => {
  await ledger.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * A folder target whose first `gate` existence checks wait for each other: a stage that copied one
 * backup at a time would never let them all through (and the test would time out, failing).
 */
class GatedTarget extends FolderStore {
  static inFlight = 0;
  static most = 0;
  static waiting: Array<() => void> = [];
  static gate = REDUNDANCY_CONCURRENCY;

  override async head(key: string): Promise<ObjectInfo> {
    GatedTarget.inFlight++;
    GatedTarget.most = Math.max(GatedTarget.most, GatedTarget.inFlight);
    try {
      if (GatedTarget.gate > 0) {
        GatedTarget.gate--;
        if (GatedTarget.gate === 0) for (const release of GatedTarget.waiting.splice(0)) release();
        else await new Promise<void>((resolve) => GatedTarget.waiting.push(resolve));
      }
      return await super.head(key);
    } finally {
      GatedTarget.inFlight--;
    }
  }
}

describe('issue 12: redundancy maps over shards', () => {
  it('copies only the shard it is given, up to REDUNDANCY_CONCURRENCY backups at once, and no more', async () => {
    const source = join(dir, 'src');
    await mkdir(source);
    for (let i = 0; i < 9; i++) {
      await writeFile(
        join(source, `s${i}-20250626_1100${String(i).padStart(2, '0')}.tar.gz`),
        gzipSync(await packTar([{ name: 'f.txt', content: `backup ${i}` }])),
      );
    }
    const target = join(dir, 'copies');
    const saved = SHARD_LIMITS.backups;
    SHARD_LIMITS.backups = 6;
    try {
      const discovery = await discoverStage(ctx, {
        runId: 'run-shards',
        trigger: 'console',
        command: 'comprehensive',
        sources: [source],
        config: { defaults: { redundancy: { targets: [target] } } },
      });
      expect(discovery.shards.map((s) => s.shard)).toEqual([0, 1]);
      for (const shard of discovery.shards) await integrityStage(ctx, shard);
    } finally {
      SHARD_LIMITS.backups = saved;
    }

    const result = await redundancyStage(ctx, 'run-shards', (url) => new GatedTarget(url), { shard: 0 });
    expect(result).toEqual({ checked: 6, copied: 6, missing: 0 });
    expect(GatedTarget.most).toBe(REDUNDANCY_CONCURRENCY);
    expect(await readdir(target)).toHaveLength(6);
    const judged = ((await ledger.getRun('run-shards'))?.results ?? []).filter(
      (r) => r.stage === 'redundancy',
    );
    expect(judged.map((r) => r.status)).toEqual(Array(6).fill('PASS'));

    const rest = await redundancyStage(ctx, 'run-shards', (url) => new FolderStore(url), { shard: 1 });
    expect(rest).toEqual({ checked: 3, copied: 3, missing: 0 });
    expect(await readdir(target)).toHaveLength(9);
  });
});
