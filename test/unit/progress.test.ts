import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Progress } from '../../lib/cli/progress.ts';
import type { Backup } from '../../lib/core/model.ts';
import { visible } from '../support/terminal.ts';

class Stream extends Writable {
  text = '';
  constructor(
    readonly isTTY: boolean,
    readonly columns = 200,
  ) {
    super();
  }
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

const backup = (id: string, bytes: number) => ({ id, bytes }) as Backup;

/** A run of two backups through discover, integrity, restore and report; `at(s)` sets the clock. */
function run(stream: Stream, env: NodeJS.ProcessEnv = {}): void {
  let t = 0;
  const at = (seconds: number) => {
    t = seconds * 1000;
  };
  const progress = new Progress({ stream, quiet: false, env, now: () => t });
  const a = backup('/src/db-20250101_000000.tar.gz', 3 * 1024 * 1024);
  const b = backup('/src/db-20250102_000000.tar.gz', 1024 * 1024);
  progress.stage('discover');
  progress.discovered(a);
  progress.discovered(b);
  at(2);
  progress.begin('integrity');
  progress.backupStarted(a);
  at(4);
  progress.bytesRead(3 * 1024 * 1024);
  progress.backupFinished(a, 'integrity', 'PASS');
  progress.backupStarted(b);
  at(6);
  progress.backupFinished(b, 'integrity', 'FAIL');
  progress.begin('restore', 1, 1024 * 1024);
  progress.backupStarted(b);
  at(10);
  progress.backupFinished(b, 'restore', 'WARN');
  progress.stage('report');
  at(10.5);
  progress.end();
}

describe('issue 13: progress a person can follow', () => {
  it('piped: one plain line a stage and a backup, with n/N, sizes in human units and the real totals', () => {
    const stream = new Stream(false);
    run(stream);
    expect(stream.text).toBe(
      [
        'discover: started',
        'discover: found 2 backups, 4.0 MiB in 2.0 s',
        'integrity: 2 backups, 4.0 MiB',
        'integrity 1/2: PASS /src/db-20250101_000000.tar.gz (3.0 MiB)',
        'integrity 2/2: FAIL /src/db-20250102_000000.tar.gz (1.0 MiB)',
        'integrity: 2/2 backups, 4.0 MiB in 4.0 s (1.0 MiB/s)',
        'restore: 1 backup, 1.0 MiB',
        'restore 1/1: WARN /src/db-20250102_000000.tar.gz (1.0 MiB)',
        'restore: 1/1 backup, 1.0 MiB in 4.0 s (256 KiB/s)',
        'report: started',
        'report: done in 500 ms',
        '',
      ].join('\n'),
    );
    expect(stream.text).not.toContain('\x1b');
  });

  it('on a terminal: stage headers, a redrawn line with n/N, bytes, rate and ETA, failures above it, in colour', () => {
    const stream = new Stream(true);
    run(stream);
    expect(stream.text).toContain('\x1b[1m▸ integrity\x1b[0m  2 backups, 4.0 MiB');
    expect(visible(stream.text)).toMatch(
      /\r<ESC>\[K {2}.*█.* 75% {2}1\/2 backups {2}3\.0 MiB\/4\.0 MiB {2}\S+ \S+\/s {2}ETA \d+ ms {2}\/src\/db-/,
    );
    expect(stream.text).toContain('\x1b[31mFAIL\x1b[0m /src/db-20250102_000000.tar.gz (1.0 MiB)');
    expect(stream.text).toContain('\x1b[33mWARN\x1b[0m /src/db-20250102_000000.tar.gz');
    // A backup that passed is counted on the redrawn line, not given a line of its own.
    expect(stream.text).not.toMatch(/PASS \/src/);
    // The redrawn line is cleared before each line of its own, and the last line ends the output.
    expect(stream.text.endsWith('report: done in 500 ms\n')).toBe(true);
    expect(visible(stream.text)).toMatch(/\r<ESC>\[K {2}.*ETA 667 ms/);
  });

  it('on a terminal with NO_COLOR (or TERM=dumb): the same lines without colour', () => {
    for (const env of [{ NO_COLOR: '1' }, { TERM: 'dumb' }]) {
      const stream = new Stream(true);
      run(stream, env);
      expect(stream.text).toContain('▸ integrity  2 backups, 4.0 MiB');
      expect(stream.text).toContain('  FAIL /src/db-20250102_000000.tar.gz (1.0 MiB)');
      expect(visible(stream.text)).not.toMatch(/<ESC>\[\d+m/);
    }
  });

  it('a redrawn line never wraps: it is cut to the terminal width', () => {
    const stream = new Stream(true, 40);
    run(stream);
    for (const drawn of visible(stream.text)
      .split('\r<ESC>[K')
      .map((s) => s.replace(/<ESC>\[\d+m/g, '')))
      if (!drawn.includes('\n')) expect(drawn.length).toBeLessThan(40);
  });

  it('--quiet: nothing at all', () => {
    const stream = new Stream(true);
    const progress = new Progress({ stream, quiet: true });
    progress.stage('discover');
    progress.discovered(backup('/a', 1));
    progress.begin('integrity');
    progress.backupFinished(backup('/a', 1), 'integrity', 'FAIL');
    progress.end();
    expect(stream.text).toBe('');
  });
});
