import { type ImmutabilityPolicy, policyFor } from './config.ts';
import { type Finding, finding, type Severity, type StageStatus, statusOfFindings } from './findings.ts';
import type { StageResultRecord } from './ledger.ts';
import { mapLimited } from './limit.ts';
import type { Backup } from './model.ts';
import type { BucketProtection, LifecycleRule, ObjectProtection } from './ports.ts';
import { type ImmutabilitySummary, immutabilityKey } from './protection-report.ts';
import { writeJson } from './run-store.ts';
import type { StageContext } from './stages/context.ts';
import { loadRun, loadShard, type ShardRef } from './stages/run.ts';

const DAY_MS = 86_400_000;
/** Object Lock lookups in flight per backup: two small GETs each, far below S3's per-prefix rates. */
const OBJECT_CONCURRENCY = 8;

/** One object of a backup as the judgement needs it. */
export interface ProtectedObject {
  key: string;
  size: number;
  lastModified: Date;
  /** Absent when the bucket has no Object Lock (no object can have a retention or a hold). */
  lock?: ObjectProtection;
}

/** Every stored object of a backup: content, manifests and sidecar (a deleted manifest loses the proof). */
function storedObjects(backup: Backup): Array<Omit<ProtectedObject, 'lock'>> {
  const out = backup.members.map((m) => ({ key: m.key, size: m.size, lastModified: m.lastModified }));
  for (const key of [...backup.manifestKeys, ...(backup.sidecarKey ? [backup.sidecarKey] : [])]) {
    out.push({ key, size: 0, lastModified: backup.createdAt });
  }
  return out;
}

function ruleApplies(rule: LifecycleRule, fullKey: string, size: number): boolean {
  if (!fullKey.startsWith(rule.prefix)) return false;
  if (rule.objectSizeGreaterThan !== undefined && !(size > rule.objectSizeGreaterThan)) return false;
  if (rule.objectSizeLessThan !== undefined && !(size < rule.objectSizeLessThan)) return false;
  return true;
}

/** When the earliest applicable lifecycle rule expires the object (hides it behind a delete marker when versioned). */
export function lifecycleExpiry(
  rules: readonly LifecycleRule[],
  fullKey: string,
  size: number,
  lastModified: Date,
): { at: Date; rule: LifecycleRule } | undefined {
  let earliest: { at: Date; rule: LifecycleRule } | undefined;
  for (const rule of rules) {
    if (!ruleApplies(rule, fullKey, size)) continue;
    const dates = [
      ...(rule.expirationDays !== undefined
        ? [new Date(lastModified.getTime() + rule.expirationDays * DAY_MS)]
        : []),
      ...(rule.expirationDate !== undefined ? [new Date(rule.expirationDate)] : []),
    ];
    for (const at of dates) if (!earliest || at < earliest.at) earliest = { at, rule };
  }
  return earliest;
}

function satisfies(
  require: ImmutabilityPolicy['require'],
  lock: ObjectProtection | undefined,
  now: Date,
  versioned: boolean,
): boolean {
  const active =
    lock?.retention && new Date(lock.retention.retainUntil) > now ? lock.retention.mode : undefined;
  if (require === 'compliance') return active === 'COMPLIANCE';
  if (require === 'governance') return active !== undefined || Boolean(lock?.legalHold);
  return active !== undefined || Boolean(lock?.legalHold) || versioned;
}

function describeBucket(bucket: BucketProtection): string {
  const lock = bucket.objectLock
    ? `Object Lock on${bucket.defaultRetention ? ` (default ${bucket.defaultRetention.mode} ${bucket.defaultRetention.days} d)` : ', no default retention'}`
    : 'Object Lock off';
  return `bucket ${bucket.bucket}: versioning ${bucket.versioning}, ${lock}`;
}

/**
 * What protects one backup against a credential that may delete, and whether that is what the
 * policy asks: the findings (warnings, errors when the policy requires a lock mode) and the facts.
 * `rpoMinutes`: a lifecycle rule that expires a backup within its series' RPO could leave the series empty.
 */
export function judgeImmutability(
  backup: Backup,
  policy: ImmutabilityPolicy,
  rpoMinutes: number,
  bucket: BucketProtection,
  probePrefix: string,
  objects: readonly ProtectedObject[],
  now: Date,
): { findings: Finding[]; summary: ImmutabilitySummary } {
  const severity: Severity = policy.require === 'none' ? 'warning' : 'error';
  const versioned = bucket.versioning === 'Enabled';
  const minRetentionMs = policy.minRetentionDays * DAY_MS;
  const missing: ProtectedObject[] = [];
  const shortRetention: ProtectedObject[] = [];
  const shortLifecycle: Array<{ object: ProtectedObject; at: Date; rule: LifecycleRule }> = [];
  let locked = 0;
  let compliance = 0;
  let legalHolds = 0;
  let earliestRetainUntil: string | undefined;
  let lifecycleFirst: Date | undefined;
  for (const object of objects) {
    const created = object.lastModified.getTime();
    const retention = object.lock?.retention;
    if (object.lock?.legalHold) legalHolds++;
    if (retention) {
      if (new Date(retention.retainUntil) > now) {
        locked++;
        if (retention.mode === 'COMPLIANCE') compliance++;
      }
      if (earliestRetainUntil === undefined || retention.retainUntil < earliestRetainUntil)
        earliestRetainUntil = retention.retainUntil;
      if (!object.lock?.legalHold && new Date(retention.retainUntil).getTime() < created + minRetentionMs)
        shortRetention.push(object);
    } else if (object.lock?.legalHold) locked++;
    // Past the policy's minimum retention a backup may go: nothing need protect it any more.
    const mayGo = minRetentionMs > 0 && now.getTime() >= created + minRetentionMs;
    if (!mayGo && !satisfies(policy.require, object.lock, now, versioned) && !shortRetention.includes(object))
      missing.push(object);
    const expiry = lifecycleExpiry(
      bucket.lifecycle,
      `${probePrefix}${object.key}`,
      object.size,
      object.lastModified,
    );
    if (expiry) {
      if (!lifecycleFirst || expiry.at < lifecycleFirst) lifecycleFirst = expiry.at;
      const allowed = created + Math.max(minRetentionMs, rpoMinutes * 60_000);
      if (expiry.at.getTime() < allowed) shortLifecycle.push({ object, ...expiry });
    }
  }
  const findings: Finding[] = [];
  const where = { backup: backup.id };
  const first = missing[0];
  if (first) {
    const wanted =
      policy.require === 'none'
        ? 'an Object Lock retention, a legal hold or versioning'
        : policy.require === 'compliance'
          ? 'an active COMPLIANCE-mode retention'
          : 'an active Object Lock retention (GOVERNANCE or COMPLIANCE) or a legal hold';
    findings.push(
      finding(
        'IMMUTABILITY_MISSING',
        `${missing.length} of ${objects.length} object(s) (first: ${first.key}) have no ${wanted}; ${describeBucket(bucket)}: ` +
          'a credential that can delete in this bucket can destroy this backup',
        { ...where, object: first.key },
        severity,
      ),
    );
  }
  const short = shortRetention[0];
  if (short) {
    findings.push(
      finding(
        'RETENTION_SHORT',
        `${shortRetention.length} object(s) (first: ${short.key}) are retained only until ${short.lock?.retention?.retainUntil}, ` +
          `less than the policy's ${policy.minRetentionDays} days after they were written`,
        { ...where, object: short.key },
        severity,
      ),
    );
  }
  const expiring = shortLifecycle[0];
  if (expiring) {
    const days = Math.round((expiring.at.getTime() - expiring.object.lastModified.getTime()) / DAY_MS);
    findings.push(
      finding(
        'RETENTION_SHORT',
        `lifecycle rule "${expiring.rule.id}" of bucket ${bucket.bucket} expires ${shortLifecycle.length} object(s) (first: ${expiring.object.key}) ` +
          `${days} d after they were written (${expiring.at.toISOString()}), before the ${policy.minRetentionDays} d minimum retention or the series' RPO of ${Math.round(rpoMinutes / 60)} h allows` +
          (expiring.rule.tags.length > 0
            ? ` (if the object carries the tag(s) ${expiring.rule.tags.join(', ')})`
            : ''),
        { ...where, object: expiring.object.key },
        severity,
      ),
    );
  }
  const summary: ImmutabilitySummary = {
    status: statusOfFindings(findings),
    require: policy.require,
    bucket: bucket.bucket,
    versioning: bucket.versioning,
    objectLock: bucket.objectLock,
    objects: objects.length,
    locked,
    compliance,
    legalHolds,
    ...(earliestRetainUntil ? { earliestRetainUntil } : {}),
    ...(lifecycleFirst ? { lifecycleExpiresAt: lifecycleFirst.toISOString() } : {}),
  };
  return { findings, summary };
}

/**
 * The immutability check of one shard's backups (issue 15), for the series whose policy has an
 * `immutability` entry: the bucket's versioning, Object Lock and lifecycle once per source, each
 * object's retention and legal hold, judged against the policy. Folder sources are not
 * applicable (SKIPPED, never PASS); a lookup that fails is CHECK_FAILED for that backup.
 * Only reads: the probe has no method that changes anything.
 */
export async function immutabilityStage(
  ctx: StageContext,
  ref: ShardRef,
): Promise<{ checked: number; notApplicable: number; failed: number }> {
  const run = await loadRun(ctx, ref.runId);
  const backups = await loadShard(ctx, ref);
  const buckets = new Map<string, Promise<BucketProtection>>();
  const summaries: Record<string, ImmutabilitySummary> = {};
  const records: StageResultRecord[] = [];
  const counts = { checked: 0, notApplicable: 0, failed: 0 };
  for (const backup of backups) {
    const policy = policyFor(run.config, backup.series);
    // An archive inside a folder backup is one of that backup's objects: judged there, once.
    if (!policy.immutability || backup.parentId !== undefined) continue;
    const started = Date.now();
    const probe = backup.source.startsWith('s3://') ? ctx.openProtection?.(backup.source) : undefined;
    let status: StageStatus;
    let findings: Finding[] = [];
    if (!backup.source.startsWith('s3://')) {
      summaries[backup.id] = {
        status: 'NOT_APPLICABLE',
        require: policy.immutability.require,
        reason:
          'a folder has no Object Lock, versioning or lifecycle: protect it with the file system or copy it to a locked bucket',
      };
      status = 'SKIPPED';
      counts.notApplicable++;
    } else {
      counts.checked++;
      try {
        if (!probe) throw new Error('this runtime has no S3 protection reader');
        let bucket = buckets.get(backup.source);
        if (!bucket) {
          bucket = probe.bucket();
          buckets.set(backup.source, bucket);
        }
        const facts = await bucket;
        const objects = await mapLimited(storedObjects(backup), OBJECT_CONCURRENCY, async (o) =>
          facts.objectLock ? { ...o, lock: await probe.object(o.key) } : o,
        );
        const judged = judgeImmutability(
          backup,
          policy.immutability,
          policy.rpoMinutes,
          facts,
          probe.prefix,
          objects,
          ctx.now(),
        );
        findings = judged.findings;
        summaries[backup.id] = judged.summary;
        status = statusOfFindings(findings);
      } catch (error) {
        counts.failed++;
        findings = [
          finding('CHECK_FAILED', `the immutability check could not complete: ${(error as Error).message}`, {
            backup: backup.id,
          }),
        ];
        summaries[backup.id] = {
          status: 'FAIL',
          require: policy.immutability.require,
          reason: (error as Error).message,
        };
        status = 'FAIL';
      }
    }
    records.push({
      runId: ref.runId,
      backupId: backup.id,
      series: backup.series,
      stage: 'immutability',
      status,
      durationMs: Date.now() - started,
      findings,
      at: ctx.now().toISOString(),
    });
  }
  if (records.length === 0) return counts;
  await ctx.ledger.recordResults(records);
  await writeJson(ctx.runStore, immutabilityKey(ref.runId, ref.shard), summaries);
  return counts;
}
