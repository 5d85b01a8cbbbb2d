import { type Finding, type FindingCode, finding } from '../../core/findings.ts';
import {
  backupLocation,
  type CatalogueEntry,
  type CopyRecord,
  expiresAtFor,
  type KnownSeries,
  type RunRecord,
  type SeriesBaseline,
  type SeriesRpo,
  type SeriesStatus,
  STAGES,
  type Stage,
  type StageResultRecord,
  type StageSummary,
  seriesStatusOf,
  type VerificationEntry,
} from '../../core/ledger.ts';
import type { Backup } from '../../core/model.ts';
import type { FirstSeenChecksum } from '../../core/ports.ts';
import { boundedSortKey, K, keyPart, neverVerifiedSortKey } from './keys.ts';

/** An item as the document client reads and writes it. */
export type Item = Record<string, unknown>;

/**
 * Findings beyond this many UTF-8 bytes of JSON are left out of a result item: DynamoDB caps items at
 * 400 KB counted in UTF-8 (dynalite counts UTF-16 characters, so only DynamoDB Local shows the
 * difference for multi-byte names).
 */
const FINDINGS_BUDGET = 200_000;
/** Room kept for the finding that counts those left out (its text is cut to a quarter: 4 bytes a character at most). */
const OMITTED_NOTE_BUDGET = 4096;

export const CATALOGUE_FIELDS = [
  'series',
  'kind',
  'source',
  'key',
  'name',
  'location',
  'createdAt',
  'objects',
  'bytes',
] as const;

/** Whether a backup's catalogue item is missing, predates first-seen or coverage indexing, or differs. */
export function catalogueChanged(existing: Item | undefined, b: Backup): boolean {
  const wanted = catalogueFields(b);
  return (
    existing?.firstSeenAt === undefined ||
    existing.gsi1pk === undefined ||
    CATALOGUE_FIELDS.some((field) => existing[field] !== wanted[field])
  );
}

export function runItem(record: RunRecord, retentionDays: number): Item {
  return {
    pk: K.run(record.runId),
    sk: K.runSk,
    type: 'run',
    ...record,
    gsi1pk: K.runsIndexPk,
    gsi1sk: `${record.startedAt}#${keyPart(record.runId)}`,
    expiresAt: expiresAtFor(record.startedAt, retentionDays),
  };
}

export function resultItem(r: StageResultRecord, retentionDays: number): Item {
  const { json, omitted } = boundedFindings(r.findings);
  return {
    pk: K.run(r.runId),
    sk: K.resultSk(r.backupId, r.stage),
    type: 'result',
    runId: r.runId,
    backupId: r.backupId,
    series: r.series,
    stage: r.stage,
    status: r.status,
    score: r.score,
    durationMs: r.durationMs,
    bytes: r.bytes,
    files: r.files,
    findings: json,
    findingsOmitted: omitted + (r.findingsOmitted ?? 0) || undefined,
    at: r.at,
    gsi1pk: K.series(r.series),
    gsi1sk: boundedSortKey(`${r.at}#${r.stage}#`, `${keyPart(r.runId)}#${keyPart(r.backupId)}`),
    expiresAt: expiresAtFor(r.at, retentionDays),
  };
}

export function checksumItem(backupId: string, c: FirstSeenChecksum): Item {
  return {
    pk: K.backup(backupId),
    sk: K.checksumSk(c.path),
    type: 'checksum',
    backupId,
    path: c.path,
    sha256: c.sha256,
    size: c.size,
    firstSeenAt: c.firstSeenAt,
  };
}

export function copyItem(copy: CopyRecord): Item {
  return {
    pk: K.backup(copy.backupId),
    sk: K.copySk(copy.location),
    type: 'copy',
    backupId: copy.backupId,
    location: copy.location,
    sha256: copy.sha256,
    bytes: copy.bytes,
    verifiedAt: copy.verifiedAt,
    runId: copy.runId,
  };
}

export function baselineItem(next: SeriesBaseline, version: number, updatedAt: string): Item {
  return {
    pk: K.series(next.series),
    sk: K.baselineSk,
    type: 'baseline',
    series: next.series,
    sizes: next.sizes,
    restores: next.restores,
    version,
    updatedAt,
  };
}

export function toBaseline(series: string, item: Item): SeriesBaseline {
  return {
    series,
    sizes: (item.sizes as SeriesBaseline['sizes']) ?? [],
    restores: (item.restores as SeriesBaseline['restores']) ?? [],
    version: Number(item.version ?? 0),
  };
}

export function toVerification(item: Item): VerificationEntry {
  return {
    backupId: String(item.backupId),
    ...(item.lastVerifiedAt !== undefined ? { lastVerifiedAt: String(item.lastVerifiedAt) } : {}),
    ...(item.lastVerifiedFingerprint !== undefined
      ? { lastVerifiedFingerprint: String(item.lastVerifiedFingerprint) }
      : {}),
  };
}

export function toKnownSeries(i: Item): KnownSeries {
  return {
    series: String(i.series),
    source: String(i.source),
    latestBackupId: String(i.latestBackupId),
    latestBackupCreatedAt: String(i.latestBackupCreatedAt),
  };
}

export function toCopy(i: Item): CopyRecord {
  return {
    backupId: String(i.backupId),
    location: String(i.location),
    sha256: String(i.sha256),
    ...(i.bytes !== undefined ? { bytes: Number(i.bytes) } : {}),
    verifiedAt: String(i.verifiedAt),
    ...(i.runId !== undefined ? { runId: String(i.runId) } : {}),
  };
}

export function catalogueFields(b: Backup): Record<(typeof CATALOGUE_FIELDS)[number], string | number> {
  return {
    series: b.series,
    kind: b.kind,
    source: b.source,
    key: b.key,
    name: b.name,
    location: backupLocation(b),
    createdAt: b.createdAt.toISOString(),
    objects: b.objects,
    bytes: b.bytes,
  };
}

export function toRun(item: Item): RunRecord {
  return {
    runId: String(item.runId),
    trigger: item.trigger as RunRecord['trigger'],
    sources: (item.sources as string[] | undefined) ?? [],
    ...(item.command !== undefined ? { command: String(item.command) } : {}),
    startedAt: String(item.startedAt),
    ...(item.finishedAt !== undefined ? { finishedAt: String(item.finishedAt) } : {}),
    status: item.status as RunRecord['status'],
    ...(item.counts !== undefined ? { counts: item.counts as RunRecord['counts'] } : {}),
    ...(item.error !== undefined ? { error: String(item.error) } : {}),
    ...(typeof item.summary === 'string'
      ? { summary: JSON.parse(item.summary) as RunRecord['summary'] }
      : {}),
  };
}

export function toResult(item: Item): StageResultRecord {
  return {
    runId: String(item.runId),
    backupId: String(item.backupId),
    series: String(item.series),
    stage: item.stage as Stage,
    status: item.status as StageResultRecord['status'],
    ...(item.score !== undefined ? { score: Number(item.score) } : {}),
    durationMs: Number(item.durationMs ?? 0),
    ...(item.bytes !== undefined ? { bytes: Number(item.bytes) } : {}),
    ...(item.files !== undefined ? { files: Number(item.files) } : {}),
    findings: JSON.parse(String(item.findings ?? '[]')) as Finding[],
    at: String(item.at),
    ...(item.findingsOmitted !== undefined ? { findingsOmitted: Number(item.findingsOmitted) } : {}),
  };
}

/** A backup item's place in its series' coverage order: when it was last verified (its gsi2 sort key), or never. */
export function verifiedKeyOf(existing: Item | undefined, backupId: string): string {
  const known = existing?.gsi2sk;
  return typeof known === 'string' ? known : neverVerifiedSortKey(backupId);
}

export function toCatalogueEntry(item: Item): CatalogueEntry {
  const optional = (field: string) =>
    item[field] !== undefined ? { [field]: String(item[field]) } : ({} as Record<string, never>);
  return {
    backupId: String(item.backupId),
    series: String(item.series ?? ''),
    kind: (item.kind as CatalogueEntry['kind']) ?? 'archive',
    source: String(item.source ?? ''),
    key: String(item.key ?? ''),
    name: String(item.name ?? ''),
    location: String(item.location ?? ''),
    createdAt: String(item.createdAt ?? ''),
    objects: Number(item.objects ?? 0),
    bytes: Number(item.bytes ?? 0),
    ...optional('firstSeenAt'),
    ...optional('firstSeenRunId'),
    ...optional('lastVerifiedAt'),
    ...optional('lastVerifiedRunId'),
  };
}

export function toFirstSeen(item: Item): FirstSeenChecksum {
  return {
    path: String(item.path),
    sha256: String(item.sha256),
    size: Number(item.size),
    firstSeenAt: String(item.firstSeenAt),
  };
}

export function toSeriesStatus(item: Item): SeriesStatus {
  const stages: Partial<Record<Stage, StageSummary>> = {};
  let lastCheckedAt: string | undefined;
  for (const stage of STAGES) {
    const raw = item[stage] as (StageSummary & { rank?: number }) | undefined;
    if (!raw) continue;
    const { rank: _rank, ...summary } = raw;
    stages[stage] = summary;
    if (lastCheckedAt === undefined || summary.at > lastCheckedAt) lastCheckedAt = summary.at;
  }
  return {
    series: String(item.series),
    status: seriesStatusOf(stages),
    stages,
    ...(item.latestBackupId !== undefined
      ? {
          latestBackup: {
            backupId: String(item.latestBackupId),
            createdAt: String(item.latestBackupCreatedAt),
          },
        }
      : {}),
    ...(lastCheckedAt !== undefined ? { lastCheckedAt } : {}),
    ...(item.rpo !== undefined ? { rpo: toSeriesRpo(item.rpo as Item) } : {}),
  };
}

function toSeriesRpo(raw: Item): SeriesRpo {
  return {
    runId: String(raw.runId),
    at: String(raw.at),
    rpoMinutes: Number(raw.rpoMinutes),
    newestBackupAgeMinutes: Number(raw.newestBackupAgeMinutes),
    exceeded: raw.exceeded === true,
  };
}

/**
 * Findings as JSON within FINDINGS_BUDGET UTF-8 bytes, keeping as many of the first ones as fit.
 * When some are left out, a last finding says how many and of which codes, under the most severe
 * code left out (the result's status already counts them), so the report keeps a trace of them.
 */
function boundedFindings(findings: readonly Finding[]): { json: string; omitted: number } {
  const json = JSON.stringify(findings);
  if (Buffer.byteLength(json) <= FINDINGS_BUDGET) return { json, omitted: 0 };
  const kept: string[] = [];
  let bytes = 2;
  for (const f of findings) {
    const piece = JSON.stringify(f);
    const size = Buffer.byteLength(piece) + 1;
    if (bytes + size > FINDINGS_BUDGET - OMITTED_NOTE_BUDGET) break;
    kept.push(piece);
    bytes += size;
  }
  const rest = findings.slice(kept.length);
  const counts = new Map<FindingCode, number>();
  for (const f of rest) counts.set(f.code, (counts.get(f.code) ?? 0) + 1);
  const code = rest.find((f) => f.severity === 'error')?.code ?? (rest[0] as Finding).code;
  const byCode = [...counts].map(([c, n]) => `${c} x${n}`).join(', ');
  const note = finding(
    code,
    `${rest.length} more findings (${byCode}) were left out of the ledger's record of this result: a DynamoDB item holds at most 400 KB; the first ${kept.length} are kept`.slice(
      0,
      OMITTED_NOTE_BUDGET / 4,
    ),
    rest[0]?.backup !== undefined ? { backup: rest[0].backup } : {},
  );
  kept.push(JSON.stringify(note));
  return { json: `[${kept.join(',')}]`, omitted: rest.length };
}
