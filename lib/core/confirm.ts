import type { Readable } from 'node:stream';
import { StoreError } from './errors.ts';
import { type Finding, type FindingCode, finding } from './findings.ts';
import type { IntegrityOptions } from './integrity/options.ts';
import { checkIntegrity } from './integrity.ts';
import type { Backup, IntegrityResult, ObjectInfo } from './model.ts';
import type { ChecksumHistory, FirstSeenChecksum, ListedVersion, ObjectStore, ReadOptions } from './ports.ts';
import { integrityVerdict } from './score.ts';

/**
 * Damage is confirmed before it is reported: a backup whose first read reports damage (or whose
 * first-seen checksums no reference vouches for) is read once more, pinned to the listed
 * versions. Findings both reads agree on stand; what only one read saw was a fault on the way
 * (CHECK_FAILED, checked again next run), and a first-seen checksum is recorded only when a
 * reference validated it or two reads agreed on it. A healthy backup is read once.
 */

/** Findings that say the bytes are damaged: they stand only when a second read says the same. */
const DAMAGE_CODES = new Set<FindingCode>([
  'CHECKSUM_MISMATCH',
  'CHECKSUM_CHANGED',
  'ARCHIVE_CORRUPT',
  'ARCHIVE_TRUNCATED',
  'MISSING_OBJECT',
  'CHECK_FAILED',
]);
/** Damage measured against a reference: a second read without it matched that reference. */
const REFERENCE_CODES = new Set<FindingCode>(['CHECKSUM_MISMATCH', 'CHECKSUM_CHANGED']);
/** Findings that leave some first-seen checksum unvouched for by any reference. */
const UNREFERENCED_CODES = new Set<FindingCode>(['NO_REFERENCE_CHECKSUM', 'UNLISTED_OBJECT']);
/** Store failures that are not about permissions: after the store's own retries, CHECK_FAILED. */
const TRANSIENT_KINDS = new Set<StoreError['kind']>(['unreachable', 'io', 'changed']);

type Offered = Omit<FirstSeenChecksum, 'firstSeenAt'>;

interface Pass {
  result: IntegrityResult;
  /** First-seen checksums the pass would have recorded, by path. */
  offered: Map<string, Offered>;
  failures: StoreError[];
}

/** checkIntegrity, with damage confirmed by a second read and first-seen records made only when trusted. */
export async function checkIntegrityConfirmed(
  backup: Backup,
  store: ObjectStore,
  options: IntegrityOptions,
): Promise<IntegrityResult> {
  const history = options.history;
  const earlier = new Map((history ? await history.firstSeenOf(backup.id) : []).map((r) => [r.path, r]));
  const readable = readableBackup(backup);
  const first = await readPass(readable, store, options, earlier);
  const fresh = [...first.offered.values()].filter((c) => !earlier.has(c.path));
  const suspect =
    first.result.findings.some((f) => DAMAGE_CODES.has(f.code)) ||
    first.failures.some((e) => e.kind === 'io') ||
    (fresh.length > 0 && first.result.findings.some((f) => UNREFERENCED_CODES.has(f.code)));
  if (!suspect) {
    if (history && fresh.length > 0) await history.recordFirstSeen(backup.id, fresh);
    return finish(first.result, recode(first.result.findings, first.failures), options);
  }

  const second = await readPass(readable, store, options, earlier);
  const seenFirst = new Set(first.result.findings.filter(isDamage).map(signature));
  const findings: Finding[] = [];
  for (const f of second.result.findings) {
    if (!isDamage(f) || seenFirst.has(signature(f))) findings.push(f);
    else findings.push(disagreement(backup, f));
  }

  // An object hashed differently by the two reads that no reference covers (the second read
  // says so): neither hash can be trusted. One a reference covers passed or failed on its own.
  const mismatchedFirst = damagedKeys(backup, first.result.findings, REFERENCE_CODES);
  const unreferenced = second.result.findings.filter((f) => UNREFERENCED_CODES.has(f.code));
  const unstable = new Set<string>();
  for (const [key, sha256] of Object.entries(second.result.objectSha256)) {
    const before = first.result.objectSha256[key];
    if (before === undefined || before === sha256) continue;
    const path = pathOf(backup, key);
    const named = unreferenced.some(
      (f) => f.object === path || (f.object === undefined && f.message.includes(path)),
    );
    if (!named) continue;
    unstable.add(key);
    findings.push(
      finding(
        'CHECK_FAILED',
        `${path} was read twice with different SHA-256 (${before}, then ${sha256}) and has no reference checksum: a fault on the way from the store, not known damage; nothing was recorded and it is checked again next run`,
        { backup: backup.id, object: path },
      ),
    );
  }

  if (history) {
    const firstByPath = first.offered;
    const trusted = [...second.offered.values()].filter((c) => {
      if (earlier.has(c.path)) return false;
      const key = keyOf(backup, c.path);
      if (key !== undefined && unstable.has(key)) return false;
      // Agreed by both reads, or validated by a reference the first read failed against.
      return firstByPath.get(c.path)?.sha256 === c.sha256 || (key !== undefined && mismatchedFirst.has(key));
    });
    if (trusted.length > 0) await history.recordFirstSeen(backup.id, trusted);
  }
  // A hash neither a reference nor a second read vouched for is no yardstick for the restore.
  const objectSha256 = Object.fromEntries(
    Object.entries(second.result.objectSha256).filter(([key]) => !unstable.has(key)),
  );
  const result = {
    ...second.result,
    objectSha256,
    durationMs: first.result.durationMs + second.result.durationMs,
    bytesRead: first.result.bytesRead + second.result.bytesRead,
  };
  return finish(result, recode(findings, [...second.failures, ...first.failures]), options);
}

/**
 * Objects restored from an archive storage class are read like any other: the pass skips
 * archive classes, so a restored object is handed to it without its class.
 */
function readableBackup(backup: Backup): Backup {
  if (!backup.members.some((m) => m.restored)) return backup;
  return {
    ...backup,
    members: backup.members.map((m) => {
      if (!m.restored) return m;
      const { storageClass: _archived, ...readableMember } = m;
      return readableMember;
    }),
  };
}

async function readPass(
  backup: Backup,
  store: ObjectStore,
  options: IntegrityOptions,
  earlier: Map<string, FirstSeenChecksum>,
): Promise<Pass> {
  const pinned = new PinnedStore(store, backup);
  const offered = new Map<string, Offered>();
  const history: ChecksumHistory = {
    async recordFirstSeen(_backupId, checksums) {
      for (const c of checksums) offered.set(c.path, c);
      return checksums.flatMap((c) => earlier.get(c.path) ?? []);
    },
    async firstSeenOf() {
      return [...earlier.values()];
    },
  };
  const result = await checkIntegrity(backup, pinned, {
    ...options,
    ...(options.history ? { history } : {}),
  });
  return { result, offered, failures: pinned.failures };
}

/** Reads of the backup's objects pinned to the listed versions; every store failure is kept. */
class PinnedStore implements ObjectStore {
  readonly url: string;
  readonly failures: StoreError[] = [];
  readonly localPath?: (key: string) => string | undefined;
  private readonly listed = new Map<string, ListedVersion>();

  constructor(
    private readonly inner: ObjectStore,
    backup: Backup,
  ) {
    this.url = inner.url;
    if (inner.localPath) this.localPath = inner.localPath.bind(inner);
    for (const m of backup.members) {
      this.listed.set(m.key, { size: m.size, ...(m.etag !== undefined ? { etag: m.etag } : {}) });
    }
  }

  list(): AsyncIterable<ObjectInfo> {
    return this.inner.list();
  }

  async head(key: string): Promise<ObjectInfo> {
    try {
      return await this.inner.head(key);
    } catch (error) {
      throw this.failed(error);
    }
  }

  async open(key: string, options?: ReadOptions): Promise<Readable> {
    const listed = options?.listed ?? this.listed.get(key);
    let stream: Readable;
    try {
      stream = await this.inner.open(key, { ...options, ...(listed ? { listed } : {}) });
    } catch (error) {
      throw this.failed(error);
    }
    stream.once('error', (error) => this.failed(error));
    return stream;
  }

  private failed(error: unknown): unknown {
    if (error instanceof StoreError) this.failures.push(error);
    return error;
  }
}

function isDamage(f: Finding): boolean {
  return DAMAGE_CODES.has(f.code);
}

/** Both reads found the same kind of damage in the same object: confirmed (the hashes may differ). */
function signature(f: Finding): string {
  return `${f.code}\0${f.object ?? ''}`;
}

function disagreement(backup: Backup, f: Finding): Finding {
  return finding(
    'CHECK_FAILED',
    `a second read disagreed with the first about ${f.object ?? backup.name}, so this is not reported as damage (${f.code}: ${f.message}); a fault on the way from the store: it is checked again next run`,
    { backup: backup.id, ...(f.object !== undefined ? { object: f.object } : {}) },
  );
}

/** Keys of the objects a pass found damage in (an archive backup's findings are all about its one object). */
function damagedKeys(
  backup: Backup,
  findings: readonly Finding[],
  codes: ReadonlySet<FindingCode> = DAMAGE_CODES,
): Set<string> {
  const damaged = findings.filter((f) => codes.has(f.code));
  if (backup.kind === 'archive') {
    return new Set(damaged.length > 0 ? backup.members.map((m) => m.key) : []);
  }
  const keys = new Set<string>();
  for (const f of damaged) {
    const key = f.object === undefined ? undefined : keyOf(backup, f.object);
    if (key !== undefined) keys.add(key);
  }
  return keys;
}

function keyOf(backup: Backup, path: string): string | undefined {
  return backup.members.find((m) => m.path === path)?.key;
}

function pathOf(backup: Backup, key: string): string {
  return backup.members.find((m) => m.key === key)?.path ?? key;
}

/**
 * A read that failed for a reason other than permissions is not ACCESS_DENIED: after the
 * store's retries it is CHECK_FAILED naming the fault; an archive tier is ARCHIVED_STORAGE.
 */
function recode(findings: readonly Finding[], failures: readonly StoreError[]): Finding[] {
  return findings.map((f) => {
    if (f.code !== 'ACCESS_DENIED') return f;
    const cause = failures.find((e) => f.message.includes(e.message));
    if (!cause) return f;
    const where = { ...(f.backup ? { backup: f.backup } : {}), ...(f.object ? { object: f.object } : {}) };
    if (cause.kind === 'archived') return finding('ARCHIVED_STORAGE', f.message, where);
    if (!TRANSIENT_KINDS.has(cause.kind)) return f;
    const message = f.message.replace(/; check the store and retry$/, '');
    return finding(
      'CHECK_FAILED',
      cause.kind === 'changed'
        ? message
        : `${message}; the store kept failing after its retries: not damage; it is checked again next run`,
      where,
    );
  });
}

function finish(result: IntegrityResult, findings: Finding[], options: IntegrityOptions): IntegrityResult {
  return { ...result, findings, status: integrityVerdict(findings, result.score, options.policy) };
}
