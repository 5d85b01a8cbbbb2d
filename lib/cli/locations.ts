import { homedir } from 'node:os';
import path from 'node:path';
import { UsageError } from '../core/errors.ts';
import { sourceHolding } from '../core/paths.ts';
import type { CliOptions } from './args.ts';

/**
 * The per-user folder of the tool's own state (default ledger and run store):
 * `$XDG_STATE_HOME/backup-validator`, else `~/.local/state/backup-validator`. Never the working
 * folder: run from inside a backup folder, the tool's files would be catalogued as backups.
 */
export function stateFolder(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_STATE_HOME;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'backup-validator');
  const home = env.HOME || env.USERPROFILE || homedir();
  return path.join(home, '.local', 'state', 'backup-validator');
}

export interface Locations {
  /** `dynamodb://TABLE` or an absolute folder. */
  ledger: string;
  /** `s3://bucket[/prefix]` or an absolute folder. */
  runStore: string;
}

/** The ledger and run store a command uses: as given, or in the per-user state folder. */
export function locationsOf(
  options: Pick<CliOptions, 'ledger' | 'runStore'>,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Locations {
  const state = stateFolder(env);
  const ledger =
    options.ledger === undefined
      ? path.join(state, 'ledger')
      : options.ledger.startsWith('dynamodb://')
        ? options.ledger
        : path.resolve(cwd, options.ledger);
  let runStore: string;
  if (options.runStore !== undefined)
    runStore = options.runStore.startsWith('s3://') ? options.runStore : path.resolve(cwd, options.runStore);
  else if (ledger.startsWith('dynamodb://')) runStore = path.join(state, 'runs');
  // Under the ledger's own folder, so two ledgers side by side never share a run store.
  else runStore = path.join(ledger, 'runs');
  return { ledger, runStore };
}

/**
 * The tool's own files (ledger, run store, report) never go inside a source: they would
 * be catalogued as backups of their own at the next run. A usage error names the option to change.
 */
export async function refuseOutputsInSources(
  options: Pick<CliOptions, 'ledger' | 'runStore' | 'json' | 'html'>,
  sources: readonly string[],
  cwd: string,
  locations: Locations,
): Promise<void> {
  const outputs: Array<{ option: string; at: string; given: boolean }> = [
    { option: '--ledger', at: locations.ledger, given: options.ledger !== undefined },
    { option: '--run-store', at: locations.runStore, given: options.runStore !== undefined },
  ];
  if (options.json !== undefined)
    outputs.push({ option: '--json', at: path.resolve(cwd, options.json), given: true });
  if (options.html !== undefined)
    outputs.push({ option: '--html', at: path.resolve(cwd, options.html), given: true });
  const folders = sources.filter((s) => !s.startsWith('s3://')).map((s) => path.resolve(cwd, s));
  const prefixes = sources.filter((s) => s.startsWith('s3://'));
  for (const { option, at, given } of outputs) {
    if (at.startsWith('dynamodb://')) continue;
    const source = at.startsWith('s3://')
      ? prefixes.find((s) => `${at.replace(/\/+$/, '')}/`.startsWith(`${s.replace(/\/+$/, '')}/`))
      : await sourceHolding(at, folders);
    if (source === undefined) continue;
    throw new UsageError(
      given
        ? `${option} ${at} lies inside the source ${source}: its files would be catalogued as backups; give a path outside the source`
        : `the default ${option.slice(2)} ${at} lies inside the source ${source}: give ${option} with a folder outside the source`,
      option.slice(2),
    );
  }
}
