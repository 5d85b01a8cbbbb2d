import type { RpoCheck } from '../../core/compliance.ts';
import type { SeriesRpo } from '../../core/ledger.ts';
import { newestBackups } from '../../core/ledger-rules.ts';
import type { Backup } from '../../core/model.ts';
import { UpdateCommand } from '../document-commands.ts';
import {
  conditionHolds,
  forEachLimit,
  ignoringConditionFailure,
  PARALLEL_WRITES,
  type TableIo,
} from './io.ts';
import { CATALOGUE_FIELDS, catalogueChanged, catalogueFields, type Item, verifiedKeyOf } from './items.ts';
import { K, keyPart, neverVerifiedSortKey } from './keys.ts';

/** Writes the backups a run found: their catalogue items (when changed) and their series' latest backup. */
export async function recordCatalogue(io: TableIo, runId: string, backups: readonly Backup[], now: string) {
  const unique = new Map(backups.map((b) => [b.id, b]));
  const known = await io.batchGet(
    [...unique.keys()].map((id) => ({ pk: K.backup(id), sk: K.backupSk })),
    ['pk', 'firstSeenAt', 'gsi1pk', 'gsi2sk', ...CATALOGUE_FIELDS],
  );
  const changed = [...unique.values()].filter((b) => catalogueChanged(known.get(K.backup(b.id)), b));
  await forEachLimit(changed, PARALLEL_WRITES, (b) =>
    writeCatalogueEntry(io, runId, b, known.get(K.backup(b.id)), now),
  );
  const { newest, outerSeries } = newestBackups(unique.values());
  await forEachLimit(newest, PARALLEL_WRITES, (b) => writeSeriesLatest(io, b, outerSeries.has(b.series)));
}

/** UpdateItem rather than a put: a put would wipe the backup's verification state, which other runs may be writing. */
async function writeCatalogueEntry(
  io: TableIo,
  runId: string,
  backup: Backup,
  existing: Item | undefined,
  now: string,
) {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const sets = Object.entries(catalogueFields(backup)).map(([field, value]) => {
    names[`#${field}`] = field;
    values[`:${field}`] = value;
    return `#${field} = :${field}`;
  });
  await io.doc.send(
    UpdateCommand({
      TableName: io.tableName,
      Key: { pk: K.backup(backup.id), sk: K.backupSk },
      UpdateExpression:
        `SET ${sets.join(', ')}, #type = :type, backupId = :backupId, ` +
        'firstSeenAt = if_not_exists(firstSeenAt, :firstSeenAt), ' +
        'firstSeenRunId = if_not_exists(firstSeenRunId, :runId), ' +
        'gsi2pk = :verified, gsi2sk = if_not_exists(gsi2sk, :never), ' +
        'gsi1pk = :coverage, gsi1sk = if_not_exists(gsi1sk, :verifiedKey)',
      ExpressionAttributeNames: { ...names, '#type': 'type' },
      ExpressionAttributeValues: {
        ...values,
        ':type': 'backup',
        ':backupId': backup.id,
        ':firstSeenAt': now,
        ':runId': runId,
        ':verified': K.verifiedIndexPk,
        ':never': neverVerifiedSortKey(backup.id),
        ':coverage': K.coverage(backup.series),
        ':verifiedKey': verifiedKeyOf(existing, backup.id),
      },
    }),
  );
}

/** The series' latest backup, if newer than the recorded one; outer series are also indexed by source. */
async function writeSeriesLatest(io: TableIo, b: Backup, outer: boolean) {
  const bySource = outer
    ? {
        set: ', #source = :source, gsi1pk = :gsi1pk, gsi1sk = :gsi1sk',
        values: { ':source': b.source, ':gsi1pk': K.source(b.source), ':gsi1sk': keyPart(b.series) },
      }
    : { set: '', values: {} };
  const names = { '#type': 'type', ...(outer ? { '#source': 'source' } : {}) };
  const newer = await conditionHolds(
    io.doc.send(
      UpdateCommand({
        TableName: io.tableName,
        Key: { pk: K.series(b.series), sk: K.seriesSk },
        UpdateExpression: `${SET_SERIES_ITEM}, latestBackupId = :id, latestBackupCreatedAt = :createdAt${bySource.set}`,
        ConditionExpression:
          'attribute_not_exists(latestBackupCreatedAt) OR latestBackupCreatedAt < :createdAt',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: {
          ...seriesItemValues(b.series),
          ':id': b.id,
          ':createdAt': b.createdAt.toISOString(),
          ...bySource.values,
        },
      }),
    ),
  );
  if (newer || !outer) return;
  // Not newer (a rerun, or a series recorded before series were indexed by source): index it all the same.
  await ignoringConditionFailure(
    io.doc.send(
      UpdateCommand({
        TableName: io.tableName,
        Key: { pk: K.series(b.series), sk: K.seriesSk },
        UpdateExpression: `SET ${bySource.set.slice(2)}`,
        ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(gsi1pk)',
        ExpressionAttributeNames: { '#source': 'source' },
        ExpressionAttributeValues: bySource.values,
      }),
    ),
  );
}

/** What every write to a series item sets, with `seriesItemValues` (and `#type` named `type`). */
export const SET_SERIES_ITEM = 'SET #type = :type, series = :series, gsi2pk = :gsi2pk, gsi2sk = :seriesKey';

export function seriesItemValues(series: string): Record<string, string> {
  return { ':type': 'series', ':series': series, ':seriesKey': keyPart(series), ':gsi2pk': K.seriesIndexPk };
}

export async function recordSeriesRpo(io: TableIo, runId: string, at: string, checks: readonly RpoCheck[]) {
  await forEachLimit(checks, PARALLEL_WRITES, async (c) => {
    await ignoringConditionFailure(
      io.doc.send(
        UpdateCommand({
          TableName: io.tableName,
          Key: { pk: K.series(c.series), sk: K.seriesSk },
          UpdateExpression: `${SET_SERIES_ITEM}, rpo = :rpo, rpoAt = :at`,
          ConditionExpression: 'attribute_not_exists(rpoAt) OR rpoAt <= :at',
          ExpressionAttributeNames: { '#type': 'type' },
          ExpressionAttributeValues: {
            ...seriesItemValues(c.series),
            ':at': at,
            ':rpo': {
              runId,
              at,
              rpoMinutes: c.rpoMinutes,
              newestBackupAgeMinutes: c.newestBackupAgeMinutes,
              exceeded: c.exceeded,
            } satisfies SeriesRpo,
          },
        }),
      ),
    );
  });
}
