import { resolve } from 'node:path';
import { openLedger } from '../adapters/embedded-ledger.ts';
import { type Config, policyFor } from '../core/config.ts';
import type { LoadHistoryOptions } from '../core/history.ts';
import type { CliOptions } from './args.ts';
import { type CliIo, EXIT } from './io.ts';
import type { Locations } from './locations.ts';

export async function showHistory(
  options: CliOptions,
  io: CliIo,
  config: Config,
  locations: Locations,
): Promise<number> {
  const { loadHistory, historyJson } = await import('../core/history.ts');
  const { renderHistory } = await import('./history-text.ts');
  const ledger = await openLedger(locations.ledger, {
    retentionDays: config.ledger.retentionDays,
    env: io.env,
  });
  try {
    const query: LoadHistoryOptions = {
      runs: options.runs,
      rpoMinutesFor: (series) => policyFor(config, series).rpoMinutes,
    };
    if (options.series) query.series = options.series;
    const data = await loadHistory(ledger, query);
    if (options.json) {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(resolve(io.cwd, options.json), `${JSON.stringify(historyJson(data), null, 2)}\n`);
    }
    if (options.html) {
      const { writeFile } = await import('node:fs/promises');
      const { renderHistoryHtml } = await import('../html-report/history-page.ts');
      const page = renderHistoryHtml(data, (series) => {
        const policy = policyFor(config, series);
        return { rpoMinutes: policy.rpoMinutes, rtoMinutes: policy.rtoMinutes };
      });
      await writeFile(resolve(io.cwd, options.html), page);
    }
    io.stdout.write(
      `${renderHistory(data, { width: io.stdout.columns ?? 100, unicode: Boolean(io.stdout.isTTY) })}\n`,
    );
    return EXIT.ok;
  } finally {
    await ledger.close();
  }
}
