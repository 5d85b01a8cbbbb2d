import { describe, expect, it } from 'vitest';
import type { StageResultRecord } from '../../lib/core/ledger.ts';
import { ResultBatch } from '../../lib/core/stages/result-batch.ts';

const record = (backupId: string) => ({ backupId }) as StageResultRecord;
const turnEnds = () => new Promise((resolve) => setImmediate(resolve));

describe('issue 13: the integrity stage writes the results of one turn together', () => {
  it('one recordResults call a turn, in order; settle() writes what is queued', async () => {
    const calls: string[][] = [];
    const batch = new ResultBatch({
      async recordResults(records) {
        calls.push(records.map((r) => r.backupId));
      },
    });
    batch.add([record('a')]);
    batch.add([record('b'), record('c')]);
    expect(calls).toEqual([]);
    await turnEnds();
    await batch.settle();
    expect(calls).toEqual([['a', 'b', 'c']]);
    batch.add([record('d')]);
    await batch.settle();
    expect(calls).toEqual([['a', 'b', 'c'], ['d']]);
  });

  it('a failed write is thrown by the next add() and after settle(), and nothing more is written', async () => {
    const calls: string[][] = [];
    const failure = new Error('ledger down');
    const batch = new ResultBatch({
      async recordResults(records) {
        calls.push(records.map((r) => r.backupId));
        throw failure;
      },
    });
    batch.add([record('a')]);
    await batch.settle();
    expect(() => batch.throwIfFailed()).toThrow(failure);
    expect(() => batch.add([record('b')])).toThrow(failure);
    await batch.settle();
    expect(calls).toEqual([['a']]);
  });
});
