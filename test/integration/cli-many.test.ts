import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger } from '../../lib/adapters/embedded-ledger.ts';
import type { RunReport } from '../../lib/core/model.ts';
import {
  gzip,
  makeTempDir,
  packTar,
  sha256Hex,
  sha256sums,
  truncateAt,
  writeTree,
} from '../support/archives.ts';
import { compiledCli, runCompiledCli, TEST_STATE_HOME } from '../support/cli.ts';
import { stampHoursAgo as stamp } from '../support/time.ts';

/**
 * Issue 13, many backups at once: the compiled CLI checks small folder backups in worker threads
 * when more than one is read at once and the run has a few of them (on by default;
 * BACKUP_VALIDATOR_WORKER_THREADS=0 turns them off). Whatever the concurrency, the verdicts and
 * findings are the ones a pass on the main thread gives, and Ctrl-C still stops the run cleanly.
 */
let dir: string;
let bin: string;
/** Worker threads as a user gets them: on, unless BACKUP_VALIDATOR_WORKER_THREADS=0. */
const WORKERS = {};

beforeAll(async () => {
  dir = await makeTempDir('bv-cli-many-');
  bin = await compiledCli();
}, 180_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A source of healthy, unreferenced and damaged backups of several kinds, `copies` of each. */
async function mixedSource(root: string, copies: number): Promise<void> {
  await mkdir(root, { recursive: true });
  for (let i = 0; i < copies; i++) {
    const at = stamp(i + 1);
    const good = gzip(await packTar([{ name: 'a.txt', content: `alpha ${i}\n` }]));
    const mismatched = gzip(await packTar([{ name: 'c.txt', content: `gamma ${i}\n` }]));
    const long = `delta ${i}\n`.repeat(400);
    const truncated = truncateAt(gzip(await packTar([{ name: 'd.txt', content: long }])), 150);
    await writeFile(join(root, `good-${at}.tar.gz`), good);
    await writeFile(join(root, `good-${at}.tar.gz.sha256`), `${sha256Hex(good)}  good-${at}.tar.gz\n`);
    await writeFile(
      join(root, `plain-${at}.tar.gz`),
      gzip(await packTar([{ name: 'b.txt', content: `beta ${i}\n` }])),
    );
    await writeFile(join(root, `bad-${at}.tar.gz`), mismatched);
    await writeFile(join(root, `bad-${at}.tar.gz.sha256`), `${sha256Hex(good)}  bad-${at}.tar.gz\n`);
    await writeFile(join(root, `cut-${at}.tar.gz`), truncated);
    const tree = { 'one.txt': `one ${i}\n`, 'two.txt': `two ${i}\n` };
    await writeTree(join(root, `tree-${at}`), {
      ...tree,
      ...(i % 2 === 0 ? { 'two.txt': 'changed\n' } : {}),
      SHA256SUMS: sha256sums(tree),
    });
  }
}

/** Each backup's status, integrity score and findings: what must not depend on the concurrency. */
async function verdicts(file: string) {
  const report = JSON.parse(await readFile(file, 'utf8')) as RunReport;
  return report.backups
    .map((b) => ({
      id: b.id,
      status: b.status,
      score: b.integrity?.score,
      findings: b.findings.map((f) => [f.code, f.severity, f.object, f.message]),
    }))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}

describe('issue 13: many backups at once through the compiled CLI', () => {
  it('--concurrency 1 and 4 give the same statuses and findings, on a first run and on a second one', async () => {
    const source = join(dir, 'mixed');
    await mixedSource(source, 4);
    /** Two runs on one ledger: the second meets the first-seen checksums the first recorded. */
    const twoRuns = async (concurrency: string) => {
      const ledger = join(dir, `ledger-${concurrency}`);
      const reports: Awaited<ReturnType<typeof verdicts>>[] = [];
      for (const round of [1, 2]) {
        const json = join(dir, `mixed-${concurrency}-${round}.json`);
        const args = ['--source', source, '--ledger', ledger, '--json', json, '--concurrency', concurrency];
        const result = await runCompiledCli(['integrity', '--quiet', ...args], dir, WORKERS);
        expect(result.code, result.stderr).toBe(1);
        reports.push(await verdicts(json));
      }
      return reports;
    };
    const one = await twoRuns('1');
    const four = await twoRuns('4');
    expect(four[0]).toEqual(one[0]);
    expect(four[1]).toEqual(one[1]);
    const statuses = new Set(one[0]?.map((b) => b.status));
    expect(statuses).toEqual(new Set(['PASS', 'WARN', 'FAIL']));
    // The second run vouches for what the first recorded: first-seen checksums went through the workers.
    expect(one[1]?.filter((b) => b.status === 'WARN').length).toBeLessThan(
      one[0]?.filter((b) => b.status === 'WARN').length ?? 0,
    );
  }, 300_000);

  it('Ctrl-C during the checks of many small backups stops the worker threads, records ABORTED, exits 130', async () => {
    const source = join(dir, 'many');
    await mkdir(source);
    for (let i = 0; i < 600; i++) {
      const name = `app${i % 30}-${stamp(1 + Math.floor(i / 30))}.tar.gz`;
      await writeFile(
        join(source, name),
        gzip(await packTar([{ name: 'data.json', content: `{"i":${i}}\n` }])),
      );
    }
    const ledger = join(dir, 'ledger-interrupted');
    const child: ChildProcess = spawn(
      process.execPath,
      [bin, 'integrity', '--source', source, '--ledger', ledger, '--concurrency', '4'],
      {
        cwd: dir,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, XDG_STATE_HOME: TEST_STATE_HOME, ...WORKERS },
      },
    );
    let output = '';
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
      child.once('exit', (code, signal) => done({ code, signal })),
    );
    let gone = false;
    void exited.then(() => {
      gone = true;
    });
    const checked = new Promise<void>((resolve) => {
      const seen = (chunk: Buffer) => {
        output += chunk.toString();
        if (/^integrity 1\/600: /m.test(output)) resolve();
      };
      child.stdout?.on('data', seen);
      child.stderr?.on('data', seen);
    });
    await Promise.race([checked, exited]);
    expect(gone, output).toBe(false);
    process.kill(-(child.pid as number), 'SIGINT');
    expect(await exited, output).toEqual({ code: 130, signal: null });
    const done = Number(/interrupted: (\d+) of 600 backups checked/.exec(output)?.[1]);
    expect(done).toBeGreaterThanOrEqual(1);
    expect(done).toBeLessThan(600);
    expect(output).toMatch(/; run \S+ recorded as ABORTED/);
    const opened = await openLedger(ledger, { retentionDays: 30 });
    try {
      const runs = await opened.recentRuns(5);
      expect(runs.map((r) => r.status)).toEqual(['ABORTED']);
      expect(runs[0]?.counts).toMatchObject({ backups: 600 });
    } finally {
      await opened.close();
    }
  }, 300_000);
});
