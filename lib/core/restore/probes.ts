import { spawn } from 'node:child_process';
import { constants as fsConstants, lstatSync } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import path from 'node:path';
import { globToRegExp, type ProbeConfig } from '../config.ts';
import { StreamingJsonValidator, validateJson } from './json-validator.ts';
import { sqliteIntegrityCheck } from './off-thread.ts';
import { killProcessTree } from './process-tree.ts';

export type BuiltinProbe = 'sqlite' | 'pg-dump' | 'mysql-dump' | 'json';

/** Probe output kept in a finding: enough to see why, small enough for a task-token payload. */
export const PROBE_OUTPUT_LIMIT = 400;
/** JSON files up to this size are parsed whole; larger ones are streamed through the validator. */
export const JSON_PARSE_LIMIT = 4 * 1024 * 1024;
const DUMP_TAIL_BYTES = 4096;

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
/** Probes open restored files without following a link: a link is never probed through. */
const READ_NOFOLLOW = fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0);

/** Which built-in probe applies to a restored file, from its name and first bytes. */
export function builtinProbeFor(relativePath: string, head: Buffer): BuiltinProbe | undefined {
  if (head.length >= 16 && head.subarray(0, 16).equals(SQLITE_MAGIC)) return 'sqlite';
  if (relativePath.toLowerCase().endsWith('.json')) return 'json';
  // A dump announces itself in its leading comment block; a marker after real SQL is not a header.
  for (const line of head.toString('latin1').split('\n', 8)) {
    if (/^-- PostgreSQL database dump\s*$/.test(line)) return 'pg-dump';
    if (/^-- (MySQL|MariaDB) dump \d/.test(line)) return 'mysql-dump';
    if (!(line.trim() === '' || line.startsWith('--') || line.startsWith('/*'))) break;
  }
  return undefined;
}

/** Runs a built-in probe; undefined when the file passes, else why it fails. */
export async function runBuiltinProbe(
  probe: BuiltinProbe,
  file: string,
  size: number,
): Promise<string | undefined> {
  switch (probe) {
    case 'sqlite':
      return sqliteIntegrity(file);
    case 'pg-dump':
      return dumpCompleteness(file, size, '-- PostgreSQL database dump complete', 'pg_dump');
    case 'mysql-dump':
      return dumpCompleteness(file, size, '-- Dump completed', 'mysqldump');
    case 'json':
      return jsonValidity(file, size);
  }
}

async function sqliteIntegrity(file: string): Promise<string | undefined> {
  try {
    // SQLite opens by name: make sure the name is the regular file restored, not a link.
    if (!lstatSync(file).isFile())
      return 'SQLite database cannot be checked: the restored path is not a regular file';
    const messages = await sqliteIntegrityCheck(file);
    if (messages.length === 1 && messages[0] === 'ok') return undefined;
    return `SQLite PRAGMA integrity_check reported: ${trimOutput(messages.join('; '))}`;
  } catch (error) {
    return `SQLite database cannot be checked: ${trimOutput((error as Error).message ?? String(error))}`;
  }
}

async function dumpCompleteness(
  file: string,
  size: number,
  marker: string,
  tool: string,
): Promise<string | undefined> {
  const handle = await open(file, READ_NOFOLLOW);
  try {
    const length = Math.min(size, DUMP_TAIL_BYTES);
    const tail = Buffer.alloc(length);
    await handle.read(tail, 0, length, size - length);
    if (tail.toString('latin1').includes(marker)) return undefined;
    const lastLine = tail.toString('latin1').trimEnd().split('\n').pop() ?? '';
    return `the ${tool} dump does not end with its completion marker "${marker}" (truncated or interrupted dump); its last line is: ${trimOutput(lastLine)}`;
  } finally {
    await handle.close();
  }
}

async function jsonValidity(file: string, size: number): Promise<string | undefined> {
  const handle = await open(file, READ_NOFOLLOW);
  try {
    if (size <= JSON_PARSE_LIMIT) {
      // A Buffer, not a string: thousands of small JSON files must not grow the heap (peak RSS).
      try {
        validateJson(await handle.readFile());
        return undefined;
      } catch (error) {
        return `invalid JSON: ${trimOutput((error as Error).message)}`;
      }
    }
    const validator = new StreamingJsonValidator();
    try {
      for await (const chunk of handle.createReadStream({ highWaterMark: 1024 * 1024, autoClose: false })) {
        validator.write(chunk as Buffer);
      }
      validator.end();
      return undefined;
    } catch (error) {
      return `invalid JSON: ${trimOutput((error as Error).message)}`;
    }
  } finally {
    await handle.close();
  }
}

/** Whether a configured probe applies: a glob without `/` matches the file name at any depth. */
export function probeMatches(match: string, relativePath: string): boolean {
  const pattern = globToRegExp(match);
  if (pattern.test(relativePath)) return true;
  return !match.includes('/') && pattern.test(path.posix.basename(relativePath));
}

export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

// biome-ignore-start lint/suspicious/noTemplateCurlyInString: shell parameter expansions, not JS templates
const BARE_ARG = '"${1}"';
const DOUBLE_QUOTED_ARG = '${1}';
/** Closes the single quotes, expands the argument in double quotes, reopens them. */
const SINGLE_QUOTED_ARG = `'"\${1}"'`;
// biome-ignore-end lint/suspicious/noTemplateCurlyInString: end of the shell expansions above

/**
 * The shell script of a configured probe: each `{file}` becomes a reference to the first
 * positional argument, quoted for where it stands (bare, inside "..." or inside '...'), so the
 * path itself never passes through the shell's parser: a member named `x$(touch owned).txt`
 * is only ever a name, however the template quotes `{file}`.
 */
export function probeScript(template: string): string {
  let script = '';
  let quote: '' | "'" | '"' = '';
  for (let i = 0; i < template.length; i++) {
    if (template.startsWith('{file}', i)) {
      script += quote === "'" ? SINGLE_QUOTED_ARG : quote === '"' ? DOUBLE_QUOTED_ARG : BARE_ARG;
      i += '{file}'.length - 1;
      continue;
    }
    const c = template[i] as string;
    script += c;
    if (quote === "'") {
      if (c === "'") quote = '';
    } else if (c === '\\' && i + 1 < template.length) {
      script += template[++i];
    } else if (quote === '"') {
      if (c === '"') quote = '';
    } else if (c === "'" || c === '"') quote = c;
  }
  return script;
}

/** Environment variables a probe inherits; everything else (credentials, task tokens) stays out. */
const PROBE_ENV_PASSED = ['PATH', 'LANG', 'LC_ALL', 'TZ'] as const;

/** The whole environment of a probe: no credentials, HOME and TMPDIR in the sandbox. */
export function probeEnvironment(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: '/usr/local/bin:/usr/bin:/bin' };
  for (const name of PROBE_ENV_PASSED) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  env.HOME = home;
  env.TMPDIR = home;
  return env;
}

export interface CustomProbeOptions {
  signal?: AbortSignal;
  /** HOME and TMPDIR of the probe, a folder in the sandbox (default: the sandbox root). */
  home?: string;
}

/**
 * Runs a configured probe with `/bin/sh -c`, in the sandbox root, the file's absolute path
 * given as the positional argument `$1` (see probeScript), with a minimal environment, in the
 * restore's own process group. On timeout the probe and every process it started are killed.
 * Undefined when it passes, else why it fails.
 */
export async function runCustomProbe(
  probe: ProbeConfig,
  file: string,
  root: string,
  options: CustomProbeOptions = {},
): Promise<string | undefined> {
  const { signal } = options;
  // A link is never handed to a probe: it could point anywhere.
  const kind = await lstat(file).then(
    (stats) =>
      stats.isFile() ? undefined : stats.isSymbolicLink() ? 'a symbolic link' : 'not a regular file',
    (error: NodeJS.ErrnoException) => `missing (${error.code})`,
  );
  if (kind) return `probe "${probe.command}" not run: the restored path is ${kind}`;
  const timeoutMs = (probe.timeoutSeconds > 0 ? probe.timeoutSeconds : 300) * 1000;
  const child = spawn('/bin/sh', ['-c', probeScript(probe.command), 'probe', file], {
    cwd: root,
    env: probeEnvironment(options.home ?? root),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > 64 * 1024) output = output.slice(-32 * 1024);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let timedOut = false;
  const killGroup = () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      killProcessTree(child.pid);
    }
    // A grandchild that escaped the tree may still hold the pipes open.
    child.stdout?.destroy();
    child.stderr?.destroy();
  };
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, timeoutMs);
  const onAbort = () => killGroup();
  signal?.addEventListener('abort', onAbort, { once: true });
  const outcome = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>(
    (resolve) => {
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
      // 'close', not 'exit': output can still be in the pipes when the process has exited.
      child.once('close', (code, exitSignal) => resolve({ code, signal: exitSignal }));
    },
  );
  clearTimeout(timer);
  signal?.removeEventListener('abort', onAbort);
  const shown = trimOutput(output.trim());
  if (timedOut) {
    return `probe "${probe.command}" timed out after ${timeoutMs / 1000} s (it and its child processes were killed)${shown ? `; output: ${shown}` : ''}`;
  }
  if (outcome.error) return `probe "${probe.command}" could not start: ${outcome.error.message}`;
  if (outcome.code !== 0) {
    const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with code ${outcome.code}`;
    return `probe "${probe.command}" ${how}${shown ? `; output: ${shown}` : ''}`;
  }
  if (probe.expect !== undefined && !output.trim().includes(probe.expect.trim())) {
    return `probe "${probe.command}" output does not contain "${probe.expect}"; output: ${shown || '(none)'}`;
  }
  return undefined;
}

/** Keeps the end of long output: that is where tools say what went wrong. */
export function trimOutput(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > PROBE_OUTPUT_LIMIT ? `...${flat.slice(-(PROBE_OUTPUT_LIMIT - 3))}` : flat;
}
