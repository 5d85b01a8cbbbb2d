import type { RunTrigger } from '../../lib/core/ledger.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';
import { discoverStage } from '../../lib/core/stages/discover.ts';
import type { Discovery, ShardRef } from '../../lib/core/stages/run.ts';
import { defaultSources, lambdaContext } from '../shared/environment.ts';
import { logged } from '../shared/logging.ts';

export interface DiscoverEvent {
  input?: {
    runId?: string;
    trigger?: RunTrigger;
    sources?: string[];
    config?: unknown;
    command?: string;
    /** Objects whose arrival started the run (functions/arrival); `object` is the one-object form. */
    objects?: string[];
    object?: string;
  };
  executionName: string;
}

export interface DiscoverOutput {
  runId: string;
  shards: ShardRef[];
  backups: number;
  series: number;
}

export function makeDiscoverHandler(context: () => StageContext, sources: () => string[] = () => []) {
  return async (event: DiscoverEvent): Promise<DiscoverOutput> => {
    const input = event.input ?? {};
    const discovery: Discovery = await discoverStage(context(), {
      runId: input.runId ?? event.executionName,
      trigger: input.trigger ?? 'console',
      command: input.command ?? 'comprehensive',
      sources: input.sources && input.sources.length > 0 ? input.sources : sources(),
      config: input.config,
      ...arrivalsOf(input),
    });
    return {
      runId: discovery.runId,
      shards: discovery.shards,
      backups: discovery.backups,
      series: discovery.series,
    };
  };
}

function arrivalsOf(input: NonNullable<DiscoverEvent['input']>): { arrivals?: string[] } {
  const arrivals = [...(input.objects ?? []), ...(input.object ? [input.object] : [])];
  return arrivals.length > 0 ? { arrivals } : {};
}

export const handler = logged(
  'discover',
  makeDiscoverHandler(
    () => lambdaContext(),
    () => defaultSources(),
  ),
  ({ backups, series, shards }) => ({ backups, series, shards: shards.length }),
);
