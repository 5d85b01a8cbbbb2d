import { describe, expect, it } from 'vitest';
import { eventFields, logged } from '../../functions/shared/logging.ts';
import { createLogger } from '../../lib/adapters/json-log.ts';

const at = () => new Date('2026-11-30T05:00:00.000Z');

describe('issue 11: structured logs', () => {
  it('writes one JSON line with timestamp, level, stage, message, runId, shard and backup', () => {
    const lines: string[] = [];
    const log = createLogger({ stage: 'integrity', write: (l) => lines.push(l), now: at }).with({
      runId: 'run-1',
      shard: 2,
    });
    log.with({ backup: 'b/2026-11-29' }).warn('integrity WARN', { status: 'WARN' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('\n');
    expect(JSON.parse(lines[0] as string)).toEqual({
      timestamp: '2026-11-30T05:00:00.000Z',
      level: 'WARN',
      stage: 'integrity',
      message: 'integrity WARN',
      runId: 'run-1',
      shard: 2,
      backup: 'b/2026-11-29',
      status: 'WARN',
    });
  });

  it('prints the message alone in text format', () => {
    const lines: string[] = [];
    createLogger({ stage: 'restore', write: (l) => lines.push(l), format: 'text' }).info('restoring b');
    expect(lines).toEqual(['restoring b']);
  });

  it('a logged handler says when it started and finished, with the run and shard of its event', async () => {
    const lines: string[] = [];
    const base = createLogger({ stage: 'integrity', write: (l) => lines.push(l), now: at });
    const handler = logged(
      'integrity',
      async (event: { runId: string; shard: number }, log) => {
        log.info('integrity PASS', { backup: 'b1' });
        return { ...event, checked: 1 };
      },
      ({ checked }) => ({ checked }),
      base,
    );
    await handler({ runId: 'run-1', shard: 0 });
    const docs = lines.map((l) => JSON.parse(l));
    expect(docs.map((d) => d.message)).toEqual(['integrity started', 'integrity PASS', 'integrity finished']);
    for (const doc of docs)
      expect(doc).toMatchObject({ level: 'INFO', stage: 'integrity', runId: 'run-1', shard: 0 });
    expect(docs[1]).toMatchObject({ backup: 'b1' });
    expect(docs[2]).toMatchObject({ checked: 1 });
  });

  it('a failing handler logs an ERROR line naming the error and rethrows', async () => {
    const lines: string[] = [];
    const base = createLogger({ stage: 'restore-trigger', write: (l) => lines.push(l), now: at });
    const handler = logged(
      'restore-trigger',
      async () => {
        throw Object.assign(new Error('no capacity'), { name: 'Capacity' });
      },
      () => ({}),
      base,
    );
    await expect(handler({ item: { runId: 'run-2', restore: 3 } })).rejects.toThrow('no capacity');
    expect(JSON.parse(lines.at(-1) as string)).toMatchObject({
      level: 'ERROR',
      runId: 'run-2',
      restore: 3,
      errorName: 'Capacity',
      errorMessage: 'no capacity',
    });
    expect(eventFields(undefined)).toEqual({});
  });
});
