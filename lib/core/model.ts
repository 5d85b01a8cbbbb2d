import type { Finding, StageStatus, Status } from './findings.ts';

/** One object as a store lists it. `key` is relative to the store's root, `/`-separated. */
export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
  /** S3 storage class; absent for folders and STANDARD. */
  storageClass?: string;
  /** S3's entity tag of this version (quoted); reads are pinned to it. */
  etag?: string;
  /** An object of an archive storage class restored on request: readable until the restore expires. */
  restored?: boolean;
  /** Checksum algorithms S3 lists for the object (a HEAD with checksum mode returns the values). */
  checksumAlgorithms?: string[];
  /** Full-object SHA-256 stored with the object, lower-case hex. */
  checksumSha256?: string;
  /** Full-object CRC64NVME / CRC32C stored with the object, as S3 reports them (base64). */
  checksumCrc64nvme?: string;
  checksumCrc32c?: string;
}

export type BackupKind = 'directory' | 'archive';

/**
 * A file of a directory backup, or the single object of an archive backup: the object as listed
 * (its `key` in the store), and its path inside the backup.
 */
export interface BackupObject extends ObjectInfo {
  /** Path inside the backup (relative to the backup's root; the archive's file name for archives). */
  path: string;
}

export interface Backup {
  /** Stable id: `<source url>/<key or prefix>`. */
  id: string;
  /** Source URL as given by the user (folder path or s3://bucket/prefix). */
  source: string;
  series: string;
  kind: BackupKind;
  /** Archive key, or the directory prefix ending in `/`. */
  key: string;
  name: string;
  createdAt: Date;
  /** Where createdAt came from. */
  createdFrom: 'name' | 'mtime';
  objects: number;
  bytes: number;
  /** Content objects (excludes SHA256SUMS manifests and sidecars, which are references). */
  members: BackupObject[];
  /**
   * Keys of SHA256SUMS files inside a directory backup; for an archive found inside one, the
   * SHA256SUMS files of that backup that may list it.
   */
  manifestKeys: string[];
  /** Key of `<archive>.sha256` beside an archive. */
  sidecarKey?: string;
  /** Id of the directory backup an archive was found in. */
  parentId?: string;
}

/** What the integrity pass learned of one member of an archive or one file of a directory. */
export interface ContentDigest {
  path: string;
  size: number;
  sha256: string;
  type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';
  linkTarget?: string;
}

export interface IntegrityResult {
  backupId: string;
  status: StageStatus;
  score: number;
  findings: Finding[];
  durationMs: number;
  bytesRead: number;
  /** SHA-256 of each stored object (key -> hex). */
  objectSha256: Record<string, string>;
  /** Files inside archives found while reading them. */
  files: number;
  contentBytes: number;
}

export interface RestoreResult {
  backupId: string;
  status: StageStatus;
  durationMs: number;
  filesRestored: number;
  bytesRestored: number;
  phases: { downloadMs: number; extractMs: number; verifyMs: number; probesMs: number; cleanupMs: number };
  findings: Finding[];
  /** The integrity check the sandbox ran first, for a backup too large for a Lambda's 15 minutes. */
  integrity?: IntegrityResult;
}

/** A backup's verdict in a report: `SKIPPED` when the command's stages did not check it. */
export type BackupStatus = Status | 'SKIPPED';

export interface BackupReport {
  id: string;
  series: string;
  kind: BackupKind;
  location: string;
  objects: number;
  bytes: number;
  createdAt: string;
  status: BackupStatus;
  /** For an archive found inside a folder backup: that backup's id. */
  parentId?: string;
  /** Why the backup was not read this run (the coverage budget); its status is then SKIPPED, never PASS. */
  deferred?: string;
  /** For a folder backup: the archives found in it, whose worst status its own takes in. */
  nested?: Array<{ id: string; status: BackupStatus }>;
  integrity: { status: StageStatus; score: number | null };
  restore: { status: StageStatus; durationMs: number; filesRestored: number; bytesRestored: number };
  findings: Array<Omit<Finding, 'backup'>>;
}

/** Coverage of one series, in the run report and `history`. */
export interface SeriesCoverage {
  series: string;
  withinDays: number;
  /** Where the budget comes from (`defaults` or `series.<pattern>`); series with the same owner share it. */
  budgetOwner: string;
  budget: { bytes: number; requests: number };
  backups: number;
  bytes: number;
  /** Bytes whose last verification is within the window (after this run). */
  bytesVerifiedInWindow: number;
  /** `bytesVerifiedInWindow / bytes` (1 for an empty series). */
  share: number;
  readThisRun: { backups: number; bytes: number; requests: number };
  /** Backups left unread by the budget this run. */
  deferred: number;
  /** The backup unverified the longest (outside the window), and since when. */
  oldestUnverified?: { backup: string; since: string; ageDays: number };
  /** What the budget's series need per run to read everything once per window. */
  neededPerRun: { bytes: number; requests: number };
  /** Whether the budget can hold the window at all (steady state, from this listing). */
  reachable: boolean;
  /** When every listed byte will have been verified within the window at this budget; null: never. */
  forecastMetAt: string | null;
  behind: boolean;
}

/** What a run used and what that is estimated to cost (docs/cost.md). */
export interface RunCost {
  /** The price table's region. */
  region: string;
  usage: {
    s3GetRequests: number;
    s3ListRequests: number;
    s3HeadRequests: number;
    s3BytesRead: number;
    lambdaGbSeconds: number;
    lambdaRequests: number;
    fargateVcpuSeconds: number;
    fargateGbSeconds: number;
    fargateStorageGbSeconds: number;
    stepFunctionsTransitions: number;
  };
  /** US dollars by service, and the total. */
  estimate: { s3: number; lambda: number; fargate: number; stepFunctions: number; total: number };
  /** Which usage figures are estimated rather than counted, and how. */
  estimated: string[];
}

export interface RunReport {
  schemaVersion: 1;
  runId: string;
  command: string;
  trigger: 'cli' | 'schedule' | 'console' | 'event';
  sources: string[];
  startedAt: string;
  finishedAt: string;
  status: Status;
  /** `pass + warn + fail + skipped = backups + seriesRows`: rows of the matrix by status. */
  counts: {
    backups: number;
    pass: number;
    warn: number;
    fail: number;
    skipped: number;
    series: number;
    /** Series (or the run) with a series-level finding, each a row of the matrix. */
    seriesRows: number;
  };
  backups: BackupReport[];
  findings: Finding[];
  /** Per series with a coverage policy: how much is verified within its window (docs/contract.md). */
  coverage?: SeriesCoverage[];
  /** What the run used and its estimated cost. */
  cost?: RunCost;
}
