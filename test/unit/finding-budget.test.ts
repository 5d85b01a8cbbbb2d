import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { DEFAULT_POLICY } from '../../lib/core/config.ts';
import {
  FINDINGS_PER_CODE,
  type Finding,
  FindingBudget,
  type FindingCode,
  finding,
  withinBudget,
} from '../../lib/core/findings.ts';
import { checkIntegrity } from '../../lib/core/integrity.ts';
import { restoreBackup } from '../../lib/core/restore/restore.ts';
import { directoryBackupOf, sha256sums } from '../support/archives.ts';
import { type Arena, directoryBackup, makeArena } from '../support/hostile-archives.ts';

const objectFinding = (code: FindingCode, n: number) =>
  finding(code, `file-${n} is bad`, { backup: 'b', object: `file-${n}` });

/** Findings of a code as the budget left them: the ones kept with their object, and how many it says it left out. */
function tally(
  findings: readonly Finding[],
  code: FindingCode,
): { kept: number; omitted: number; summaries: number } {
  const ofCode = findings.filter((f) => f.code === code);
  const summaries = ofCode.filter((f) => f.omitted !== undefined);
  return {
    kept: ofCode.filter((f) => f.object !== undefined).length,
    omitted: summaries.reduce((sum, f) => sum + (f.omitted ?? 0), 0),
    summaries: summaries.length,
  };
}

describe('issue 11: one finding budget per code, for the integrity pass and the restore alike', () => {
  it('keeps the first findings of each code, then counts the rest in one finding that says how many', () => {
    const budget = new FindingBudget();
    const total = FINDINGS_PER_CODE + 7;
    for (let n = 0; n < total; n++) budget.add(objectFinding('CHECKSUM_MISMATCH', n));
    budget.add(objectFinding('UNLISTED_OBJECT', 0));
    const out = budget.finish();
    expect(tally(out, 'CHECKSUM_MISMATCH')).toEqual({ kept: FINDINGS_PER_CODE, omitted: 7, summaries: 1 });
    expect(tally(out, 'UNLISTED_OBJECT')).toEqual({ kept: 1, omitted: 0, summaries: 0 });
    const kept = out.filter((f) => f.code === 'CHECKSUM_MISMATCH' && f.object !== undefined);
    expect(kept.map((f) => f.object)).toEqual(
      Array.from({ length: FINDINGS_PER_CODE }, (_, n) => `file-${n}`),
    );
    const summary = out.find((f) => f.omitted !== undefined);
    expect(summary).toEqual({
      code: 'CHECKSUM_MISMATCH',
      severity: 'error',
      backup: 'b',
      omitted: 7,
      message: `7 more CHECKSUM_MISMATCH findings like the ones above were left out (e.g. ${[0, 1, 2, 3, 4]
        .map((n) => `file-${FINDINGS_PER_CODE + n}`)
        .join(', ')})`,
    });
    // The summary comes after what it sums up.
    expect(out.at(-1)).toBe(summary);
  });

  it('never leaves out a finding about the backup as a whole (no object)', () => {
    const findings = Array.from({ length: FINDINGS_PER_CODE + 3 }, (_, n) =>
      finding('PROBE_FAILED', `probe ${n} failed`, { backup: 'b' }),
    );
    expect(withinBudget(findings)).toEqual(findings);
  });

  it("adds a budget's own summary into one count: a result budgeted twice still says the whole number once", () => {
    const first = new FindingBudget();
    for (let n = 0; n < FINDINGS_PER_CODE + 10; n++) first.add(objectFinding('MISSING_OBJECT', n));
    const again = withinBudget([
      ...first.finish(),
      ...Array.from({ length: 4 }, (_, n) => objectFinding('MISSING_OBJECT', 100 + n)),
    ]);
    expect(tally(again, 'MISSING_OBJECT')).toEqual({ kept: FINDINGS_PER_CODE, omitted: 14, summaries: 1 });
  });

  describe('through the passes', () => {
    let arena: Arena;
    beforeEach(async () => {
      arena = await makeArena('bv-budget-');
    });
    afterEach(async () => {
      await arena.cleanup();
    });

    const PREFIX = 'backups/20250625_114622/';
    const FILES = FINDINGS_PER_CODE + 15;

    /** A folder backup of FILES + 1 files whose SHA256SUMS lists them and FILES more that are not there. */
    async function writeBackup(): Promise<void> {
      const dir = path.join(arena.store, ...PREFIX.split('/'));
      await mkdir(dir, { recursive: true });
      const listed: Record<string, string> = { 'kept.txt': 'kept\n' };
      for (let n = 0; n < FILES; n++) listed[`gone-${String(n).padStart(2, '0')}.txt`] = `gone ${n}\n`;
      await writeFile(path.join(dir, 'kept.txt'), 'kept\n');
      for (let n = 0; n < FILES; n++) {
        listed[`here-${n}.txt`] = `here ${n}\n`;
        await writeFile(path.join(dir, `here-${n}.txt`), `here ${n}\n`);
      }
      await writeFile(path.join(dir, 'SHA256SUMS'), sha256sums(listed));
    }

    it('the integrity pass keeps the budget and counts every finding it left out', async () => {
      await writeBackup();
      const store = new FolderStore(arena.store);
      const result = await checkIntegrity(await directoryBackupOf(store, PREFIX), store, {
        policy: DEFAULT_POLICY,
      });
      expect(result.status).toBe('FAIL');
      const missing = tally(result.findings, 'MISSING_OBJECT');
      expect(missing).toEqual({ kept: FINDINGS_PER_CODE, omitted: FILES - FINDINGS_PER_CODE, summaries: 1 });
    });

    it('the restore keeps the same budget: its own findings and those of the references it shares, one count each', async () => {
      await writeBackup();
      const backup = await directoryBackup(arena.store, PREFIX);
      // An integrity pass that read other bytes for every file: each one a finding of the restore's own.
      const objectSha256 = Object.fromEntries(backup.members.map((m) => [m.key, 'f'.repeat(64)]));
      const result = await restoreBackup({
        backup,
        store: new FolderStore(arena.store),
        root: arena.root,
        policy: DEFAULT_POLICY,
        probes: [],
        objectSha256,
      });
      expect(result.status).toBe('FAIL');
      expect(tally(result.findings, 'MISSING_OBJECT')).toEqual({
        kept: FINDINGS_PER_CODE,
        omitted: FILES - FINDINGS_PER_CODE,
        summaries: 1,
      });
      expect(tally(result.findings, 'RESTORE_MISMATCH')).toEqual({
        kept: FINDINGS_PER_CODE,
        omitted: FILES + 1 - FINDINGS_PER_CODE,
        summaries: 1,
      });
    });
  });
});
