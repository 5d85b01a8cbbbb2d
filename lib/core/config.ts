import { type BackupJob, parseBackupJobs } from './backup/jobs.ts';
import { invalidConfig, UsageError } from './errors.ts';
import { DEFAULT_PRICES, type PriceTable } from './prices.ts';

export type RestoreSelect = 'latest' | 'all' | 'random';

export interface Policy {
  rpoMinutes: number;
  rtoMinutes: number;
  integrityThreshold: number;
  weights: { checksum: number; access: number; archive: number };
  restore: { select: RestoreSelect; maxBytes: number; maxExpansionRatio: number; maxEntries: number };
  redundancy: { copies: number; targets: string[] };
  /** Protection against deletion asked of S3 backups; absent: not checked. */
  immutability?: ImmutabilityPolicy;
  coverage: CoveragePolicy;
}

/**
 * Every object read within `withinDays` (0: no coverage policy, every run reads everything), at
 * most `budget` per run (0: unlimited). The budget is shared by the series whose policy takes it
 * from the same place (`defaults`, or one `series` entry).
 */
export interface CoveragePolicy {
  withinDays: number;
  budget: { bytes: number; requests: number };
  /** How often the scheduled run comes, which the forecast and the feasibility use. */
  runEveryDays: number;
  /** The severity of COVERAGE_BEHIND. */
  behind: 'warning' | 'error';
}

/** `none`: report what protects each backup, warn where nothing does; `governance`/`compliance`: require that Object Lock mode. */
export type ImmutabilityRequirement = 'none' | 'governance' | 'compliance';

export interface ImmutabilityPolicy {
  require: ImmutabilityRequirement;
  /** Days after its creation a backup must stay undeletable (retention) and unexpired (lifecycle); 0: no minimum. */
  minRetentionDays: number;
}

export const DEFAULT_IMMUTABILITY: ImmutabilityPolicy = { require: 'none', minRetentionDays: 0 };

export interface ProbeConfig {
  /** Glob on the restored file's path (relative to the restore root). */
  match: string;
  /** Shell command; `{file}` (bare or inside quotes) stands for the file's absolute path, passed as `$1`, never parsed. */
  command: string;
  /** Text the command's output must contain (trimmed); absent means exit code 0 is enough. */
  expect?: string;
  timeoutSeconds: number;
}

export interface Config {
  defaults: Policy;
  series: Record<string, PolicyOverride>;
  probes: ProbeConfig[];
  ledger: { retentionDays: number };
  /** Object names (globs) that are archives whatever their suffix; their first bytes tell the format. */
  archives: { patterns: string[] };
  /** Named jobs of the `backup` command. */
  backups?: Record<string, BackupJob>;
  /** Prices that turn a run's usage into a cost estimate (docs/cost.md). */
  prices: PriceTable;
}

export type PolicyOverride = {
  [K in keyof Policy]?: Policy[K] extends object ? Partial<Policy[K]> : Policy[K];
} & { coverage?: Partial<Omit<CoveragePolicy, 'budget'>> & { budget?: Partial<CoveragePolicy['budget']> } };

/** Limits used when the configuration leaves a restore limit at 0 ("built-in safe default"). */
export const SAFE_RESTORE_LIMITS = {
  maxBytes: 50 * 1024 ** 3,
  maxExpansionRatio: 250,
  maxEntries: 1_000_000,
} as const;

export const DEFAULT_POLICY: Policy = {
  rpoMinutes: 1440,
  rtoMinutes: 30,
  integrityThreshold: 0.9,
  weights: { checksum: 0.4, access: 0.4, archive: 0.2 },
  restore: { select: 'latest', maxBytes: 0, maxExpansionRatio: 0, maxEntries: 0 },
  redundancy: { copies: 0, targets: [] },
  coverage: { withinDays: 0, budget: { bytes: 0, requests: 0 }, runEveryDays: 1, behind: 'warning' },
};

export const DEFAULT_CONFIG: Config = {
  defaults: DEFAULT_POLICY,
  series: {},
  probes: [],
  ledger: { retentionDays: 400 },
  archives: { patterns: ['*.snapshot'] },
  prices: DEFAULT_PRICES,
};

/** Restore limits with zeros replaced by the safe defaults. */
export function effectiveRestoreLimits(policy: Policy): {
  maxBytes: number;
  maxExpansionRatio: number;
  maxEntries: number;
} {
  const r = policy.restore;
  return {
    maxBytes: r.maxBytes > 0 ? r.maxBytes : SAFE_RESTORE_LIMITS.maxBytes,
    maxExpansionRatio: r.maxExpansionRatio > 0 ? r.maxExpansionRatio : SAFE_RESTORE_LIMITS.maxExpansionRatio,
    maxEntries: r.maxEntries > 0 ? r.maxEntries : SAFE_RESTORE_LIMITS.maxEntries,
  };
}

type Check = (value: unknown, key: string) => unknown;

/** A check that keeps the value as given when `ok` accepts it. */
function valid(what: string, ok: (v: unknown) => boolean): Check {
  return (v, key) => {
    if (!ok(v)) throw invalidConfig(key, what, v);
    return v;
  };
}

/** A check that accepts one of `values`: `"a", "b" or "c"` in its message. */
function oneOf(...values: string[]): Check {
  const quoted = values.map((value) => JSON.stringify(value));
  const what = `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`;
  return valid(what, (v) => values.includes(v as string));
}

const isNumber = (v: unknown): v is number => typeof v === 'number';
const nonNegative = valid('a number >= 0', (v) => isNumber(v) && Number.isFinite(v) && v >= 0);
const fraction = valid('a number between 0 and 1', (v) => isNumber(v) && v >= 0 && v <= 1);
const integer = valid('a whole number >= 0', (v) => isNumber(v) && Number.isInteger(v) && v >= 0);
const positive = valid('a number > 0', (v) => isNumber(v) && Number.isFinite(v) && v > 0);
const select = oneOf('latest', 'all', 'random');
const requirement = oneOf('none', 'governance', 'compliance');
const severity = oneOf('warning', 'error');
const targets: Check = (v, key) => {
  if (!Array.isArray(v) || v.some((t) => typeof t !== 'string' || t.length === 0)) {
    throw invalidConfig(key, 'a list of folders or s3:// URLs');
  }
  return [...v];
};

const archivePatterns: Check = (v, key) => {
  if (!Array.isArray(v) || v.some((p) => typeof p !== 'string' || p.trim() === '' || p.endsWith('/'))) {
    throw invalidConfig(
      key,
      'a list of name patterns such as "*.snapshot" (a pattern with "/" is matched against the whole key)',
      v,
    );
  }
  return [...v];
};

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
  pb: 1000 ** 5,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  pib: 1024 ** 5,
};

/** `"2 TiB"`, `"500GB"`, `"1.5 GiB"` or a number of bytes, as a whole number of bytes; undefined when not a size. */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  if (!match) return undefined;
  const unit = SIZE_UNITS[(match[2] as string).toLowerCase() || 'b'];
  return unit === undefined ? undefined : Math.round(Number(match[1]) * unit);
}

const size: Check = (v, key) => {
  const bytes = parseSize(v);
  if (bytes === undefined) {
    throw invalidConfig(key, 'a size such as "2 TiB", "500 GB" or a number of bytes', v);
  }
  return bytes;
};
const text: Check = (v, key) => {
  if (typeof v !== 'string' || v === '') throw invalidConfig(key, 'a non-empty string');
  return v;
};

const PRICES_SCHEMA = Object.fromEntries(
  Object.keys(DEFAULT_PRICES).map((key) => [key, key === 'region' ? text : nonNegative]),
) as Record<keyof PriceTable, Check>;

const POLICY_SCHEMA = {
  rpoMinutes: nonNegative,
  rtoMinutes: nonNegative,
  integrityThreshold: fraction,
  weights: { checksum: fraction, access: fraction, archive: fraction },
  restore: { select, maxBytes: integer, maxExpansionRatio: nonNegative, maxEntries: integer },
  redundancy: { copies: integer, targets },
  immutability: { require: requirement, minRetentionDays: nonNegative },
  coverage: {
    withinDays: nonNegative,
    budget: { bytes: size, requests: integer },
    runEveryDays: positive,
    behind: severity,
  },
} as const;

type Schema = { readonly [key: string]: Check | Schema };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseObject(value: unknown, schema: Schema, path: string): Record<string, unknown> {
  if (!isRecord(value)) throw invalidConfig(path, 'an object');
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const keyPath = path ? `${path}.${key}` : key;
    // Own keys only: "constructor" or "hasOwnProperty" must not reach Object.prototype.
    const rule = Object.hasOwn(schema, key) ? schema[key] : undefined;
    if (rule === undefined) {
      throw new UsageError(
        `unknown configuration key "${keyPath}" (expected one of: ${Object.keys(schema).join(', ')})`,
        keyPath,
      );
    }
    out[key] = typeof rule === 'function' ? rule(v, keyPath) : parseObject(v, rule, keyPath);
  }
  return out;
}

function parseProbe(value: unknown, index: number): ProbeConfig {
  const path = `probes[${index}]`;
  if (!isRecord(value)) throw invalidConfig(path, 'an object');
  for (const key of Object.keys(value)) {
    if (!['match', 'command', 'expect', 'timeoutSeconds'].includes(key)) {
      throw new UsageError(
        `unknown configuration key "${path}.${key}" (expected match, command, expect, timeoutSeconds)`,
        `${path}.${key}`,
      );
    }
  }
  for (const key of ['match', 'command'] as const) {
    if (typeof value[key] !== 'string' || value[key] === '') {
      throw invalidConfig(`${path}.${key}`, 'a non-empty string');
    }
  }
  if (value.expect !== undefined && typeof value.expect !== 'string') {
    throw invalidConfig(`${path}.expect`, 'a string');
  }
  const timeoutSeconds =
    value.timeoutSeconds === undefined
      ? 300
      : (nonNegative(value.timeoutSeconds, `${path}.timeoutSeconds`) as number);
  return {
    match: value.match as string,
    command: value.command as string,
    ...(value.expect !== undefined ? { expect: value.expect as string } : {}),
    timeoutSeconds,
  };
}

function mergePolicy(base: Policy, override: PolicyOverride): Policy {
  return {
    ...base,
    ...override,
    weights: { ...base.weights, ...override.weights },
    restore: { ...base.restore, ...override.restore },
    redundancy: { ...base.redundancy, ...override.redundancy },
    ...(base.immutability || override.immutability
      ? { immutability: { ...DEFAULT_IMMUTABILITY, ...base.immutability, ...override.immutability } }
      : {}),
    coverage: {
      ...base.coverage,
      ...override.coverage,
      budget: { ...base.coverage.budget, ...override.coverage?.budget },
    },
  } as Policy;
}

/** Validates a configuration document; every problem is a UsageError naming the key. */
export function parseConfig(document: unknown): Config {
  if (document === undefined || document === null) return DEFAULT_CONFIG;
  if (!isRecord(document)) throw new UsageError('the configuration must be a JSON object');
  for (const key of Object.keys(document)) {
    if (!['defaults', 'series', 'probes', 'ledger', 'archives', 'prices', 'backups'].includes(key)) {
      throw new UsageError(
        `unknown configuration key "${key}" (expected defaults, series, probes, ledger, archives, prices, backups)`,
        key,
      );
    }
  }
  const defaultsOverride =
    document.defaults === undefined ? {} : parseObject(document.defaults, POLICY_SCHEMA, 'defaults');
  const defaults = mergePolicy(DEFAULT_POLICY, defaultsOverride as PolicyOverride);
  const weightSum = defaults.weights.checksum + defaults.weights.access + defaults.weights.archive;
  if (Math.abs(weightSum - 1) > 1e-6) {
    throw new UsageError(
      `configuration key "defaults.weights" must add up to 1, got ${weightSum}`,
      'defaults.weights',
    );
  }
  const series: Record<string, PolicyOverride> = Object.create(null);
  if (document.series !== undefined) {
    if (!isRecord(document.series)) throw invalidConfig('series', 'an object');
    for (const [pattern, override] of Object.entries(document.series)) {
      series[pattern] = parseObject(override, POLICY_SCHEMA, `series.${pattern}`) as PolicyOverride;
    }
  }
  let probes: ProbeConfig[] = [];
  if (document.probes !== undefined) {
    if (!Array.isArray(document.probes)) throw invalidConfig('probes', 'a list');
    probes = document.probes.map(parseProbe);
  }
  const ledger = { ...DEFAULT_CONFIG.ledger };
  if (document.ledger !== undefined) {
    const parsed = parseObject(document.ledger, { retentionDays: integer }, 'ledger');
    if (parsed.retentionDays !== undefined) ledger.retentionDays = parsed.retentionDays as number;
  }
  const archives = { patterns: [...DEFAULT_CONFIG.archives.patterns] };
  if (document.archives !== undefined) {
    const parsed = parseObject(document.archives, { patterns: archivePatterns }, 'archives');
    if (parsed.patterns !== undefined) archives.patterns = parsed.patterns as string[];
  }
  const prices: PriceTable =
    document.prices === undefined
      ? DEFAULT_PRICES
      : {
          ...DEFAULT_PRICES,
          ...(parseObject(document.prices, PRICES_SCHEMA, 'prices') as Partial<PriceTable>),
        };
  const config: Config = { defaults, series, probes, ledger, archives, prices };
  if (document.backups !== undefined) config.backups = parseBackupJobs(document.backups);
  return config;
}

/** Glob over series names and paths: `*` within a segment, `**` across segments, `?` one character. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        source += '.*';
        i++;
        if (glob[i + 1] === '/') i++;
      } else source += '[^/]*';
    } else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/**
 * Whether a `series` pattern applies to a series id (`<source>/<name>`, docs/contract.md): it
 * matches the whole id or its last path segments, so `db-*` applies to `/srv/backups/db-nightly`
 * and `s3://bucket/prod/**` to every series of that prefix.
 */
export function seriesMatches(pattern: string, series: string): boolean {
  if (pattern === series) return true;
  const glob = globToRegExp(pattern);
  if (glob.test(series)) return true;
  for (let at = series.indexOf('/'); at >= 0; at = series.indexOf('/', at + 1)) {
    const tail = series.slice(at + 1);
    if (tail !== '' && (pattern === tail || glob.test(tail))) return true;
  }
  return false;
}

/**
 * Where a series' coverage budget comes from: `defaults`, or the last matching `series` entry that
 * sets one. Series with the same owner share one budget per run.
 */
export function coverageBudgetOwner(config: Config, series: string): string {
  let owner = 'defaults';
  for (const [pattern, override] of Object.entries(config.series)) {
    if (override.coverage?.budget !== undefined && seriesMatches(pattern, series))
      owner = `series.${pattern}`;
  }
  return owner;
}

/** The policy of a series: defaults, then every matching `series` entry in document order. */
export function policyFor(config: Config, series: string): Policy {
  let policy = config.defaults;
  for (const [pattern, override] of Object.entries(config.series)) {
    if (seriesMatches(pattern, series)) policy = mergePolicy(policy, override);
  }
  return policy;
}
