import { constants } from 'node:fs';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FolderBackupTarget, S3BackupTarget } from '../adapters/backup-targets.ts';
import { S3Store } from '../adapters/s3-store.ts';
import { openCopyTarget, openStore, s3ClientConfigFromEnv } from '../adapters/stores.ts';
import { BACKUP_SUFFIX } from '../core/backup/compress.ts';
import type { BackupVerify } from '../core/backup/jobs.ts';
import { type BackupInput, type BackupPlan, planBackup } from '../core/backup/plan.ts';
import { METADATA_NAME, type WrittenArchive, writeArchive } from '../core/backup/write.ts';
import { MANIFEST_NAME, SIDECAR_SUFFIX } from '../core/catalogue.ts';
import type { Config } from '../core/config.ts';
import { BackupFailedError, BackupValidatorError, UsageError } from '../core/errors.ts';
import type { Ledger } from '../core/ledger.ts';
import { locationsOverlap, resolveLocation } from '../core/locations.ts';
import type { RunReport } from '../core/model.ts';
import type { BackupTarget, ObjectStore } from '../core/ports.ts';
import type { StageContext } from '../core/stages/context.ts';
import { discoverStage } from '../core/stages/discover.ts';
import { integrityStage } from '../core/stages/integrity.ts';
import { reportStage } from '../core/stages/report.ts';
import { loadShard } from '../core/stages/run.ts';
import { humanBytes, humanTime } from '../core/units.ts';
import { BACKUP_USAGE, type BackupOptions, parseBackupArgs, resolveJob } from './backup-options.ts';
import { loadConfigFile } from './config-file.ts';
import { type CliIo, EXIT, exitCodeOf, newRunId, reportError } from './io.ts';
import { locationsOf } from './locations.ts';
import { printReport } from './print.ts';
import { Progress } from './progress.ts';
import { localDeps, markStopped, openContext } from './run-context.ts';

/** `20261130T031502Z`: a timestamp the catalogue reads, in UTC. */
export function backupStamp(at: Date): string {
  return at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

function uniqueMember(wanted: string, taken: Set<string>): string {
  let name = wanted.replace(/^\/+|\/+$/g, '') || 'root';
  for (let n = 2; taken.has(name); n++) name = `${wanted}-${n}`;
  taken.add(name);
  return name;
}

/** The `--from` values as inputs: Docker volumes resolved to their folders, names made unique. */
async function resolveInputs(from: string[], names: string[], io: CliIo): Promise<BackupInput[]> {
  const taken = new Set([MANIFEST_NAME, METADATA_NAME]);
  const commands = from.filter((f) => f.startsWith('command:')).length;
  if (names.length > commands)
    throw new UsageError(`${names.length} --name given for ${commands} command source(s)`, 'name');
  const inputs: BackupInput[] = [];
  let commandIndex = 0;
  for (const given of from) {
    if (given.startsWith('command:')) {
      const command = given.slice('command:'.length).trim();
      if (command === '')
        throw new UsageError('--from command: needs a command, e.g. command:pg_dump mydb', 'from');
      const name = names[commandIndex++] ?? `command-${commandIndex}.out`;
      if (name.includes('/') || name.startsWith('.'))
        throw new UsageError(`--name ${name}: a file name, without "/" or a leading "."`, 'name');
      if (taken.has(name))
        throw new UsageError(`--name ${name} is used twice (or is a reserved name)`, 'name');
      taken.add(name);
      inputs.push({ kind: 'command', command, member: name });
    } else if (given.startsWith('docker-volume:')) {
      const volume = given.slice('docker-volume:'.length);
      if (volume === '') throw new UsageError('--from docker-volume: needs a volume name', 'from');
      const { dockerVolumeMountpoint, unreadableMountpoint } = await import('../adapters/docker-volumes.ts');
      const mountpoint = await dockerVolumeMountpoint(volume, io.env);
      await access(mountpoint, constants.R_OK | constants.X_OK).catch((error: unknown) => {
        throw new BackupValidatorError(unreadableMountpoint(volume, mountpoint, (error as Error).message), {
          cause: error,
        });
      });
      inputs.push({ kind: 'folder', path: mountpoint, member: uniqueMember(volume, taken), from: given });
    } else {
      const folder = path.resolve(io.cwd, given);
      inputs.push({
        kind: 'folder',
        path: folder,
        member: uniqueMember(path.basename(folder), taken),
        from: given,
      });
    }
  }
  return inputs;
}

/** A backup is never written into what it backs up, nor a source into its own backup. */
async function refuseOverlap(inputs: BackupInput[], to: string, cwd: string): Promise<void> {
  if (to.startsWith('s3://')) return;
  const target = await resolveLocation(to, cwd);
  for (const input of inputs) {
    if (input.kind !== 'folder') continue;
    const source = await resolveLocation(input.path, cwd);
    if (!locationsOverlap(source, target)) continue;
    const targetPath = target.kind === 'folder' ? target.path : to;
    const sourcePath = source.kind === 'folder' ? source.path : input.path;
    const inside = targetPath.startsWith(sourcePath);
    throw new UsageError(
      inside
        ? `--to ${to} lies inside --from ${input.from}: the backup would contain itself; write it outside the folder`
        : `--from ${input.from} lies inside --to ${to}: the backup would contain earlier backups; back up the folder to another place`,
      'to',
    );
  }
}

function openTarget(to: string, io: CliIo): { target: BackupTarget; url: string } {
  if (to.startsWith('s3://')) {
    const store = openCopyTarget(to.replace(/\/+$/, ''), { s3: s3ClientConfigFromEnv(io.env) });
    if (!(store instanceof S3Store)) throw new UsageError(`--to ${to} is not an S3 location`, 'to');
    return { target: new S3BackupTarget(store), url: store.url };
  }
  const url = path.resolve(io.cwd, to);
  return { target: new FolderBackupTarget(url), url };
}

/** The target seen as a source holding only the new backup and its sidecar. */
function onlyTheBackup(store: ObjectStore, keys: readonly string[]): ObjectStore {
  const view: ObjectStore = {
    url: store.url,
    async *list() {
      for (const key of [...keys].sort()) yield await store.head(key);
    },
    open: (key, options) => store.open(key, options),
    head: (key) => store.head(key),
  };
  if (store.localPath) {
    const localPath = store.localPath.bind(store);
    view.localPath = (key) => localPath(key);
  }
  return view;
}

/**
 * The ledger of the validation run: other series of the target are not this run's business,
 * so they are not reported as vanished (NO_BACKUPS) because the run lists one backup.
 */
function oneBackupLedger(ledger: Ledger): Ledger {
  return new Proxy(ledger, {
    get(target, property, receiver) {
      if (property === 'seriesOfSource') return async () => [];
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

interface BackupRun {
  written: WrittenArchive;
  location: string;
  report: RunReport;
}

export async function backupMain(argv: string[], io: CliIo): Promise<number> {
  let verbose = argv.includes('--verbose') || argv.includes('-v');
  try {
    const options = parseBackupArgs(argv);
    if (options === 'help') {
      io.stdout.write(`${BACKUP_USAGE}\n`);
      return EXIT.ok;
    }
    verbose = options.verbose;
    const { config, document } = await loadConfigFile(options.config, io.cwd);
    const job = resolveJob(options, config);
    const progress = new Progress({ stream: io.stderr, quiet: options.quiet, env: io.env });
    const run = await runBackup(job, options, io, config, document, progress);
    io.stdout.write(
      `Backup written: ${run.location} (${humanBytes(run.written.bytes)} from ${run.written.metadata.files} file(s), ${humanBytes(run.written.metadata.bytes)}; SHA-256 ${run.written.sha256}` +
        `${run.written.checksum ? `; ${run.written.checksum.algorithm} ${run.written.checksum.base64} kept by the store` : ''})\n\n`,
    );
    printReport(io, run.report, new Date(), { inventoryOnly: false, weights: config.defaults.weights });
    if (options.json) {
      const json = {
        ...run.report,
        backup: {
          location: run.location,
          key: run.written.key,
          sha256: run.written.sha256,
          bytes: run.written.bytes,
          ...(run.written.checksum ? { checksum: run.written.checksum } : {}),
          metadata: run.written.metadata,
        },
      };
      await writeFile(path.resolve(io.cwd, options.json), `${JSON.stringify(json, null, 2)}\n`);
    }
    return exitCodeOf(run.report);
  } catch (error) {
    if (error instanceof BackupFailedError) {
      io.stderr.write(`backup-validator: backup FAILED: ${error.message}\n`);
      if (verbose) io.stderr.write(`${error.stack ?? ''}\n`);
      return EXIT.failed;
    }
    return reportError(io, error, verbose);
  }
}

async function runBackup(
  job: ReturnType<typeof resolveJob>,
  options: BackupOptions,
  io: CliIo,
  config: Config,
  document: unknown,
  progress: Progress,
): Promise<BackupRun> {
  const inputs = await resolveInputs(job.from, job.names, io);
  await refuseOverlap(inputs, job.to, io.cwd);
  const { target, url } = openTarget(job.to, io);
  const createdAt = new Date();
  const key = `${job.series}-${backupStamp(createdAt)}${BACKUP_SUFFIX[job.compress]}`;
  if (await target.exists(key))
    throw new UsageError(`${url}/${key} already exists: run the backup again in a second`);
  const spoolDir = await mkdtemp(path.join(tmpdir(), 'bv-backup-spool-'));
  let written: WrittenArchive;
  const started = Date.now();
  try {
    progress.line(`backup: reading and hashing ${job.from.join(', ')}`);
    let hashed = 0;
    const plan: BackupPlan = await planBackup(inputs, spoolDir, {
      hashed: (n) => {
        hashed += n;
      },
    });
    if (plan.bytes === 0)
      throw new BackupFailedError(
        `${job.from.join(', ')} holds no file content (${plan.files} file(s), 0 bytes): an empty backup is no backup (EMPTY_BACKUP); nothing was written`,
      );
    for (const skipped of plan.skipped)
      progress.line(`backup: skipped ${skipped} (not a file, folder or link)`);
    progress.begin('backup', 1, plan.bytes);
    written = await writeArchive(plan, target, {
      key,
      series: job.series,
      compression: job.compress,
      createdAt,
      events: {
        archiving: (entry) => {
          if (entry.type === 'file') progress.bytesRead(entry.size);
        },
      },
    });
    try {
      await target.write(
        `${key}${SIDECAR_SUFFIX}`,
        Readable.from([Buffer.from(`${written.sha256}  ${key}\n`)]),
      );
    } catch (error) {
      await target.remove(key);
      throw error;
    }
    progress.line(
      `backup: wrote ${key}: ${plan.files} file(s), ${humanBytes(plan.bytes)} -> ${humanBytes(written.bytes)} in ${humanTime(Date.now() - started)} (hashed ${humanBytes(hashed)} first)`,
    );
  } finally {
    await rm(spoolDir, { recursive: true, force: true });
    progress.end();
  }
  const report = await validate(url, key, written, job.verify, options, io, config, document, progress);
  return { written, location: `${url}/${key}`, report };
}

/** integrity (and restore) of the new backup alone, its checksums recorded as first seen. */
async function validate(
  url: string,
  key: string,
  written: WrittenArchive,
  verify: BackupVerify,
  options: BackupOptions,
  io: CliIo,
  config: Config,
  document: unknown,
  progress: Progress,
): Promise<RunReport> {
  const locations = locationsOf(options, io.cwd, io.env);
  const opened = await openContext(io, config, locations, progress, [url]);
  const s3 = s3ClientConfigFromEnv(io.env);
  const ctx: StageContext = {
    ...opened.ctx,
    ledger: oneBackupLedger(opened.ctx.ledger),
    openSource: (source) =>
      source === url
        ? onlyTheBackup(openStore(url, { s3 }), [key, `${key}${SIDECAR_SUFFIX}`])
        : opened.ctx.openSource(source),
  };
  const runId = newRunId(new Date());
  try {
    const discovery = await discoverStage(ctx, {
      runId,
      trigger: 'cli',
      command: 'backup',
      sources: [url],
      config: document,
    });
    const [shard] = discovery.shards;
    const backups = shard ? await loadShard(ctx, shard) : [];
    const backup = backups.find((b) => b.key === key);
    if (!backup || backups.length !== 1)
      throw new BackupFailedError(
        `${url}/${key} was written but its catalogue found ${backups.length} backup(s) there`,
      );
    await ctx.ledger.recordFirstSeen(backup.id, [
      { path: backup.name, sha256: written.sha256, size: written.bytes },
    ]);
    progress.begin('integrity', 1, written.bytes);
    await integrityStage(ctx, shard as NonNullable<typeof shard>);
    if (verify === 'restore') {
      const { runRestoresLocally } = await import('../pipeline/local-restores.ts');
      const deps = await localDeps(io, opened, runId, {});
      try {
        await runRestoresLocally(ctx, runId, deps);
      } finally {
        deps.close();
      }
    }
    return (await reportStage(ctx, runId)).report;
  } catch (error) {
    await markStopped(ctx, runId, error);
    throw error;
  } finally {
    progress.end();
    await opened.close();
  }
}
