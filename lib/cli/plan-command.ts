import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { openLedger } from '../adapters/embedded-ledger.ts';
import { openStore, s3ClientConfigFromEnv } from '../adapters/stores.ts';
import { seriesLabeller } from '../core/catalogue.ts';
import type { Config } from '../core/config.ts';
import { humanDollars } from '../core/cost.ts';
import { describeBudget } from '../core/coverage.ts';
import { planRun, type RunPlan } from '../core/plan.ts';
import { humanBytes } from '../core/units.ts';
import type { CliOptions } from './args.ts';
import { type CliIo, EXIT } from './io.ts';
import type { Locations } from './locations.ts';
import { renderCost, renderCoverage } from './render-coverage.ts';

/** `backup-validator plan`: lists the sources and reads the ledger, never a backup, and writes nothing but --json. */
export async function runPlan(
  options: CliOptions,
  io: CliIo,
  config: Config,
  locations: Locations,
): Promise<number> {
  const s3 = s3ClientConfigFromEnv(io.env);
  const ledger = await openLedger(locations.ledger, {
    retentionDays: config.ledger.retentionDays,
    env: io.env,
  });
  try {
    const sources = options.sources.map((s) =>
      s.startsWith('s3://') ? s.replace(/\/+$/, '') : resolve(io.cwd, s),
    );
    const plan = await planRun(
      {
        ledger,
        openSource: (url) => openStore(url, { s3 }),
        now: io.now ?? (() => new Date()),
      },
      sources,
      config,
    );
    io.stdout.write(`${renderPlan(plan, config)}\n`);
    if (options.json) await writeFile(resolve(io.cwd, options.json), `${JSON.stringify(plan, null, 2)}\n`);
    return EXIT.ok;
  } finally {
    await ledger.close();
  }
}

export function renderPlan(plan: RunPlan, config: Config): string {
  const l = plan.listing;
  const out = [
    `Listed ${l.backups} backup(s) in ${l.series} series, ${l.objects} objects, ${humanBytes(l.bytes)} (${l.seconds.toFixed(1)} s); no backup was read.`,
    `The next run reads ${plan.read.backups} backup(s), ${humanBytes(plan.read.bytes)}, about ${plan.read.requests} GET requests; restores ${plan.restores.backups} (${humanBytes(plan.restores.bytes)}).`,
  ];
  if (plan.coverage.length > 0) {
    out.push('', renderCoverage(plan.coverage, seriesLabeller(plan.sources)));
    for (const owner of new Set(plan.coverage.map((c) => c.budgetOwner))) {
      const c = plan.coverage.find((row) => row.budgetOwner === owner);
      if (!c) continue;
      out.push(
        `  budget of ${owner}: ${describeBudget(c.budget)} per run; holding the window needs ${describeBudget(c.neededPerRun)} per run`,
      );
    }
  }
  out.push('', `${renderCost(plan.run)} (deployed pipeline, one run)`);
  out.push(
    `A month of runs (${plan.month.runs} at one every ${config.defaults.coverage.runEveryDays} day(s)): ${humanDollars(plan.month.estimate.total)}`,
  );
  out.push(
    '',
    plan.coverage.length === 0
      ? 'No coverage policy: every run reads every backup (set coverage.withinDays and coverage.budget to bound it).'
      : plan.reachable
        ? 'Coverage window reachable at this budget.'
        : 'Coverage window NOT reachable at this budget:',
  );
  for (const f of plan.findings) out.push(`  ${f.code} ${f.series ?? ''}: ${f.message}`);
  return out.join('\n');
}
