import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import type { CliIo } from '../../lib/cli/io.ts';
import { main } from '../../lib/cli/main.ts';

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

const REPO = join(import.meta.dirname, '..', '..');
let compiled: Promise<string> | undefined;

/**
 * The CLI compiled from the current sources, as `npm ci` compiles it, built once per test file
 * into a folder of its own (never dist/, which a developer's last build may hold).
 */
export function compiledCli(): Promise<string> {
  compiled ??= (async () => {
    const { buildCli } = await import('../../scripts/build-cli.mjs');
    return buildCli(join(REPO, '.vitest-tmp', `cli-${process.pid}-${randomBytes(4).toString('hex')}`));
  })();
  return compiled;
}

/** Removes what {@link compiledCli} built. */
export async function removeCompiledCli(): Promise<void> {
  if (!compiled) return;
  const bin = await compiled;
  compiled = undefined;
  await rm(dirname(bin), { recursive: true, force: true });
}

/**
 * Runs the compiled CLI as a user's shell does, in a process of its own. With `tty`, inside a
 * pseudo-terminal made by util-linux `script` (stdout and stderr then arrive together, as a
 * terminal shows them). Resolves when the process and everything that held its output are gone.
 */
export async function runCompiledCli(
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
  options: { tty?: boolean } = {},
): Promise<CliResult> {
  const bin = await compiledCli();
  const fullEnv: NodeJS.ProcessEnv = { ...process.env, XDG_STATE_HOME: TEST_STATE_HOME, ...env };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete fullEnv[key];
  const [command, commandArgs] = options.tty
    ? ['script', ['-qfec', [bin, ...args].map(shellQuote).join(' '), '/dev/null']]
    : [bin, args];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command as string, commandArgs as string[], {
      cwd,
      env: fullEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
  });
}

function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
