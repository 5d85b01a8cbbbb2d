import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UsageError } from '../core/errors.ts';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;
type Parsed = ReturnType<typeof parseArgs>;

/** The options every command that runs checks takes, `backup` too: declared once for the parser. */
export const SHARED_OPTIONS = {
  config: { type: 'string' },
  json: { type: 'string' },
  ledger: { type: 'string' },
  'run-store': { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionsConfig;

export interface SharedOptions {
  config?: string;
  json?: string;
  /** As given; the default is resolved by locations.ts. */
  ledger?: string;
  runStore?: string;
  quiet: boolean;
  verbose: boolean;
}

/**
 * Parses `argv` strictly (positionals allowed) with `options`. An unknown option is a usage error
 * that names `valid`, the options of `command`, and the nearest of them to what was typed.
 */
export function parseOptions(
  argv: string[],
  options: OptionsConfig,
  command: string | undefined,
  valid: readonly string[],
): Parsed {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options });
  } catch (error) {
    throw optionError(error as Error & { code?: string }, command, valid);
  }
}

/** The shared options' values, as both option records hold them. */
export function sharedValues(values: Parsed['values']): SharedOptions {
  const shared: SharedOptions = { quiet: Boolean(values.quiet), verbose: Boolean(values.verbose) };
  for (const key of ['config', 'json', 'ledger'] as const) {
    const value = values[key];
    if (typeof value === 'string') shared[key] = value;
  }
  if (typeof values['run-store'] === 'string') shared.runStore = values['run-store'];
  return shared;
}

/** parseArgs' own messages talk of positional arguments: say instead which options the command takes. */
function optionError(
  error: Error & { code?: string },
  command: string | undefined,
  valid: readonly string[],
): UsageError {
  const unknown = /^Unknown option '([^']+)'/.exec(error.message)?.[1];
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown !== undefined) {
    const near = closest(unknown, valid);
    return new UsageError(
      `unknown option ${unknown}${command ? ` for ${command}` : ''}${near ? ` (did you mean ${near}?)` : ''}; ` +
        `the options${command ? ` of ${command}` : ''} are: ${valid.join(', ')}`,
      undefined,
      { cause: error },
    );
  }
  return new UsageError(error.message, undefined, { cause: error });
}

/** The valid option nearest to a mistyped one (at most two edits away), if any. */
function closest(given: string, valid: readonly string[]): string | undefined {
  let best: { option: string; distance: number } | undefined;
  for (const option of valid) {
    const distance = editDistance(given, option);
    if (distance <= 2 && (best === undefined || distance < best.distance)) best = { option, distance };
  }
  return best?.option;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    previous = current;
  }
  return previous[b.length] ?? 0;
}
