import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { inject } from 'vitest';
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

/**
 * Runs the CLI in this process, as `backup-validator ARGS` in `cwd` would. Its restores run the
 * sandbox's bundle with plain node, as the compiled CLI's do (the sources through tsx cost
 * each sandbox process a compile).
 */
export async function runCli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const stdout = new Capture();
  const stderr = new Capture();
  const io: CliIo = {
    stdout,
    stderr,
    cwd,
    env: { ...process.env, XDG_STATE_HOME: TEST_STATE_HOME, ...env },
    sandboxEntry: await sandboxBundle(),
  };
  const code = await main(args, io);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

let built: Promise<string> | undefined;
let compiled: Promise<string> | undefined;

/** The run's one build of the CLI from the current sources, as `npm ci` compiles it (see {@link sharedBuild}). */
function builtCli(): Promise<string> {
  built ??= sharedBuild(join(inject('runFolder'), 'cli'));
  return built;
}

/**
 * The compiled CLI in a folder of this test file's own (a copy of the run's one build), so that
 * a look for processes still running from it sees only this file's.
 */
export function compiledCli(): Promise<string> {
  compiled ??= (async () => {
    const bin = await builtCli();
    const own = join(inject('runFolder'), `cli-${process.pid}-${randomBytes(4).toString('hex')}`);
    await cp(dirname(bin), own, { recursive: true });
    return join(own, basename(bin));
  })();
  return compiled;
}

/** The restore sandbox's bundle (what the image and the compiled CLI run), from the run's one build. */
export async function sandboxBundle(): Promise<string> {
  const { SANDBOX_BUNDLE } = await import('../../scripts/build-cli.mjs');
  return join(dirname(await builtCli()), SANDBOX_BUNDLE);
}

/**
 * Builds into `outdir` once for all test files of the run: the first file to ask builds, the
 * others wait for the build to be marked done (a file written whole, then renamed into place).
 */
async function sharedBuild(outdir: string): Promise<string> {
  const done = `${outdir}.done`;
  let builder = true;
  try {
    await mkdir(`${outdir}.lock`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    builder = false;
  }
  if (builder) {
    let outcome = '';
    try {
      const { buildCli } = await import('../../scripts/build-cli.mjs');
      await buildCli(outdir);
    } catch (error) {
      outcome = error instanceof Error ? (error.stack ?? error.message) : String(error);
    }
    await writeFile(`${done}.tmp`, outcome || 'ok');
    await rename(`${done}.tmp`, done);
  }
  for (;;) {
    const outcome = await readFile(done, 'utf8').catch(() => undefined);
    if (outcome === 'ok') return join(outdir, 'backup-validator.mjs');
    if (outcome !== undefined) throw new Error(`the compiled CLI for the tests failed to build: ${outcome}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
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
