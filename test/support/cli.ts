import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type CliIo, main } from '../../lib/cli/main.ts';

class Capture extends Writable {
  text = '';
  isTTY = false;
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The per-user state folder of test runs: never the real user's (`env` may give its own). */
export const TEST_STATE_HOME = join(tmpdir(), `bv-test-state-${process.pid}`);

/** Runs the CLI in this process, as `backup-validator ARGS` in `cwd` would. */
export async function runCli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const stdout = new Capture();
  const stderr = new Capture();
  const io: CliIo = { stdout, stderr, cwd, env: { ...process.env, XDG_STATE_HOME: TEST_STATE_HOME, ...env } };
  const code = await main(args, io);
  return { code, stdout: stdout.text, stderr: stderr.text };
}
