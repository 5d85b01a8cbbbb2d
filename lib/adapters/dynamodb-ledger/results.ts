import { LedgerError } from '../../core/errors.ts';
import {
  applyResultsToBaseline,
  emptyBaseline,
  type SeriesBaseline,
  type StageResultRecord,
} from '../../core/ledger.ts';
import { newestVerifications, rankedVerdict, seriesVerdicts } from '../../core/ledger-rules.ts';
import { type Backoff, backoffMs } from '../../core/retry.ts';
import { PutCommand, UpdateCommand } from '../document-commands.ts';
import { SET_SERIES_ITEM, seriesItemValues } from './catalogue.ts';
import {
  forEachLimit,
  ignoringConditionFailure,
  isConditionFailure,
  PARALLEL_WRITES,
  sleep,
  type TableIo,
} from './io.ts';
import { baselineItem, resultItem, toBaseline } from './items.ts';
import { K, verifiedSortKey } from './keys.ts';

/** Another run updated the baseline first: retry soon, spread out (full jitter). */
const VERSION_CONFLICT_BACKOFF: Backoff = { baseMs: 25, capMs: 1000 };

const BASELINE_ATTEMPTS = 20;

/** Writes the results, then what they change: series verdicts, baselines and last-verified times. */
export async function recordResults(
  io: TableIo,
  records: readonly StageResultRecord[],
  retentionDays: number,
  now: () => Date,
): Promise<void> {
  await io.batchPut(records.map((r) => resultItem(r, retentionDays)));
  await Promise.all([
    forEachLimit(seriesVerdicts(records), PARALLEL_WRITES, (r) => writeSeriesVerdict(io, r)),
    updateBaselines(io, records, now),
    forEachLimit(newestVerifications(records), PARALLEL_WRITES, (r) => markVerified(io, r)),
  ]);
}

/** The newest run's verdict replaces an older run's; within a run the worse one stays (conditional update). */
async function writeSeriesVerdict(io: TableIo, r: StageResultRecord): Promise<void> {
  const verdict = rankedVerdict(r);
  await ignoringConditionFailure(
    io.doc.send(
      UpdateCommand({
        TableName: io.tableName,
        Key: { pk: K.series(r.series), sk: K.seriesSk },
        UpdateExpression: `${SET_SERIES_ITEM}, #stage = :summary`,
        ConditionExpression:
          'attribute_not_exists(#stage) OR (#stage.runId = :runId AND #stage.#rank <= :rank) ' +
          'OR (#stage.runId <> :runId AND #stage.#at < :at)',
        ExpressionAttributeNames: { '#type': 'type', '#stage': r.stage, '#rank': 'rank', '#at': 'at' },
        ExpressionAttributeValues: {
          ...seriesItemValues(r.series),
          ':summary': verdict,
          ':runId': r.runId,
          ':rank': verdict.rank,
          ':at': r.at,
        },
      }),
    ),
  );
}

/** Read, fold, write with a version check; a concurrent writer makes us read again. */
async function updateBaselines(io: TableIo, records: readonly StageResultRecord[], now: () => Date) {
  const bySeries = new Map<string, StageResultRecord[]>();
  for (const r of records) bySeries.set(r.series, [...(bySeries.get(r.series) ?? []), r]);
  await forEachLimit([...bySeries], PARALLEL_WRITES, async ([series, group]) => {
    for (let attempt = 0; attempt < BASELINE_ATTEMPTS; attempt++) {
      const current = await readBaseline(io, series);
      const next = applyResultsToBaseline(current, group);
      if (next === current) return;
      try {
        await io.doc.send(
          PutCommand({
            TableName: io.tableName,
            Item: baselineItem(next, current.version + 1, now().toISOString()),
            ConditionExpression:
              current.version === 0 ? 'attribute_not_exists(pk)' : 'version = :expectedVersion',
            ...(current.version === 0
              ? {}
              : { ExpressionAttributeValues: { ':expectedVersion': current.version } }),
          }),
        );
        return;
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        await sleep(backoffMs(attempt + 1, VERSION_CONFLICT_BACKOFF));
      }
    }
    throw new LedgerError(
      `the baseline of series ${series} kept changing under ${BASELINE_ATTEMPTS} attempts to update it ` +
        `(too many concurrent runs on ${io.location}?); run again`,
      io.location,
    );
  });
}

export async function readBaseline(io: TableIo, series: string): Promise<SeriesBaseline> {
  const item = await io.getItem(K.series(series), K.baselineSk);
  return item === undefined ? emptyBaseline(series) : toBaseline(series, item);
}

/** Moves the backup's last-verified time forward, never back (conditional update). */
async function markVerified(io: TableIo, r: StageResultRecord): Promise<void> {
  await ignoringConditionFailure(
    io.doc.send(
      UpdateCommand({
        TableName: io.tableName,
        Key: { pk: K.backup(r.backupId), sk: K.backupSk },
        UpdateExpression:
          'SET #type = :type, backupId = :backupId, series = if_not_exists(series, :series), ' +
          'lastVerifiedAt = :at, lastVerifiedRunId = :runId, gsi2pk = :gsi2pk, gsi2sk = :gsi2sk, ' +
          `gsi1pk = :coverage, gsi1sk = :gsi2sk${r.fingerprint ? ', lastVerifiedFingerprint = :fingerprint' : ''}`,
        ConditionExpression: 'attribute_not_exists(lastVerifiedAt) OR lastVerifiedAt < :at',
        ExpressionAttributeNames: { '#type': 'type' },
        ExpressionAttributeValues: {
          ':type': 'backup',
          ':backupId': r.backupId,
          ':series': r.series,
          ':at': r.at,
          ':runId': r.runId,
          ':gsi2pk': K.verifiedIndexPk,
          ':gsi2sk': verifiedSortKey(r.at, r.backupId),
          ':coverage': K.coverage(r.series),
          ...(r.fingerprint ? { ':fingerprint': r.fingerprint } : {}),
        },
      }),
    ),
  );
}
