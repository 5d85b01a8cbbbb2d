import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import {
  CreateBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { makeIntegrityHandler } from '../../functions/integrity/handler.ts';
import { makeReportHandler } from '../../functions/report/handler.ts';
import type { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import { LocalSandbox } from '../../lib/adapters/local-sandbox.ts';
import { S3_CLIENT_DEFAULTS, S3Store } from '../../lib/adapters/s3-store.ts';
import type { RunReport } from '../../lib/core/model.ts';
import { runKeys } from '../../lib/core/run-store.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';
import { TASK_STATE_FUNCTIONS } from '../../lib/pipeline/definition.ts';
import {
  type LocalRunDeps,
  localRestore,
  runPipelineLocally,
  type TaskHandlers,
} from '../../lib/pipeline/local-runner.ts';
import { flipBit, gzip, packTar, sha256Hex, sha256sums } from '../support/archives.ts';
import { flattenCfn, synthStack } from '../support/cdk.ts';
import { sandboxBundle } from '../support/cli.ts';
import { freshLedger } from '../support/ledger.ts';
import { stampHoursAgo as stamp } from '../support/time.ts';

let s3Config: S3ClientConfig;
let client: S3Client;
let definitionText: string;
let scratch: string;
/** The sandbox as the image runs it (plain node): the sources through tsx cost each restore a compile. */
let sandboxEntry: string;
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

beforeAll(async () => {
  s3Config = {
    ...S3_CLIENT_DEFAULTS,
    endpoint: inject('s3Endpoint'),
    forcePathStyle: true,
    region: 'us-east-1',
    credentials,
  };
  client = new S3Client(s3Config);
  const { template } = synthStack({ sources: ['s3://example-backups/db'] }, { nag: false });
  const [machine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
  definitionText = flattenCfn(machine?.Properties.DefinitionString);
  scratch = await mkdtemp(join(tmpdir(), 'bv-pipeline-'));
  sandboxEntry = await sandboxBundle();
});

afterAll(async () => {
  client.destroy();
  await rm(scratch, { recursive: true, force: true });
});

let ledger: DynamoDbLedger;
let bucket: string;
let ctx: StageContext;

beforeEach(async () => {
  bucket = `src-${randomBytes(4).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  await client.send(new CreateBucketCommand({ Bucket: `${bucket}-runs` }));
  ledger = await freshLedger();
  ctx = {
    ledger,
    runStore: new S3Store(`s3://${bucket}-runs`, { clientConfig: s3Config }),
    openSource: (url) => new S3Store(url, { clientConfig: s3Config }),
    now: () => new Date(),
  };
});

afterEach(async () => {
  await ledger.close();
});

async function put(key: string, body: Buffer | string): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

/** A healthy .tar.gz with a SHA256SUMS at its root and a sidecar beside it. */
async function healthyArchive(name: string, files: Record<string, string>): Promise<Buffer> {
  const tar = await packTar([
    { name: 'SHA256SUMS', content: sha256sums(files) },
    ...Object.entries(files).map(([n, content]) => ({ name: n, content })),
  ]);
  const gz = gzip(tar);
  await put(`backups/${name}`, gz);
  await put(`backups/${name}.sha256`, `${sha256Hex(gz)}  ${name}\n`);
  return gz;
}

function sandboxEnvironment() {
  return {
    AWS_ENDPOINT_URL_S3: inject('s3Endpoint'),
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_REGION: 'us-east-1',
  };
}

function deps(overrides: Partial<LocalRunDeps> = {}): LocalRunDeps {
  return {
    restore: localRestore(new LocalSandbox({ entry: sandboxEntry, env: sandboxEnvironment(), scratch })),
    openTarget: (url) => new S3Store(url, { clientConfig: s3Config }),
    definitionText,
    retryIntervals: Object.fromEntries(Object.keys(TASK_STATE_FUNCTIONS).map((s) => [s, 0])),
    ...overrides,
  };
}

const source = () => `s3://${bucket}/backups`;
const runId = () => `run-${randomBytes(3).toString('hex')}`;

function statusByName(report: RunReport): Record<string, string> {
  return Object.fromEntries(report.backups.map((b) => [b.id.slice(source().length + 1), b.status]));
}

describe('the synthesized state machine, run locally against S3 and DynamoDB servers', () => {
  it('passes a healthy set of backups end to end, restores included', async () => {
    await healthyArchive(`db-${stamp(1)}.tar.gz`, {
      'db.sql': '-- PostgreSQL database dump\nSELECT 1;\n-- PostgreSQL database dump complete\n',
    });
    await healthyArchive(`files-${stamp(2)}.tar.gz`, { 'a.json': '{"a":1}', 'b.txt': 'bravo' });
    const id = runId();
    const report = await runPipelineLocally(
      ctx,
      { runId: id, trigger: 'console', sources: [source()] },
      deps(),
    );
    expect(report.status).toBe('PASS');
    expect(report.backups.map((b) => [b.integrity.status, b.restore.status])).toEqual([
      ['PASS', 'PASS'],
      ['PASS', 'PASS'],
    ]);
    expect((await ledger.getRun(id))?.run.status).toBe('PASS');
  });

  it('fails the run for one corrupt backup while the others still pass, with report and ledger complete', async () => {
    const db = `db-${stamp(1)}.tar.gz`;
    const webName = `web-${stamp(1)}.tar.gz`;
    await healthyArchive(db, { 'db.sql': 'SELECT 1;' });
    const gz = await healthyArchive(webName, { 'index.html': '<html>'.repeat(500) });
    await put(`backups/${webName}`, flipBit(gz, Math.floor(gz.length / 2)));
    const id = runId();
    const report = await runPipelineLocally(
      ctx,
      { runId: id, trigger: 'console', sources: [source()] },
      deps(),
    );
    expect(report.status).toBe('FAIL');
    expect(statusByName(report)).toEqual({ [db]: 'PASS', [webName]: 'FAIL' });
    const web = report.backups.find((b) => b.series === `${source()}/web`);
    expect(web?.findings.map((f) => f.code)).toContain('CHECKSUM_MISMATCH');
    const detail = await ledger.getRun(id);
    expect(detail?.run.status).toBe('FAIL');
    const stages = (detail?.results ?? [])
      .map((r) => `${r.stage}:${r.backupId.endsWith('.tar.gz') ? r.series.slice(source().length + 1) : '?'}`)
      .sort();
    expect(stages).toEqual([
      'compliance:db',
      'compliance:web',
      'integrity:db',
      'integrity:web',
      'restore:db',
      'restore:web',
    ]);
  });

  it('issue 14: the Report step writes the HTML page beside the JSON report, from the same document', async () => {
    await healthyArchive(`db-${stamp(1)}.tar.gz`, { 'db.sql': 'SELECT 1;' });
    const id = runId();
    const report = await runPipelineLocally(
      ctx,
      { runId: id, trigger: 'schedule', sources: [source()] },
      deps(),
    );
    const page = await text(await ctx.runStore.open(runKeys.reportHtml(id)));
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).toContain(`<code>${id}</code>`);
    expect(page).toContain(`Backup validation <span class="badge s-${report.status}">`);
    expect(page).toContain('<svg role="img"');
  });

  it('issue 14: a failed run sends one message: which backup, which finding, since when, and where the report is', async () => {
    const webName = `web-${stamp(1)}.tar.gz`;
    await healthyArchive(`db-${stamp(1)}.tar.gz`, { 'db.sql': 'SELECT 1;' });
    const gz = await healthyArchive(webName, { 'index.html': '<html>'.repeat(500) });
    await put(`backups/${webName}`, flipBit(gz, Math.floor(gz.length / 2)));
    const sent: Array<{ subject: string; body: string }> = [];
    const notifier = { notify: async (subject: string, body: string) => void sent.push({ subject, body }) };
    const withNotices = (handlers: TaskHandlers): TaskHandlers => ({
      ...handlers,
      Report: async (input) => ({
        Payload: JSON.parse(
          JSON.stringify(
            await makeReportHandler(
              () => ctx,
              () => {},
              'test',
              () => notifier,
            )(input.Payload as never),
          ),
        ),
      }),
    });
    const first = runId();
    await runPipelineLocally(
      ctx,
      { runId: first, trigger: 'schedule', sources: [source()] },
      deps({ wrapHandlers: withNotices }),
    );
    const second = runId();
    await runPipelineLocally(
      ctx,
      { runId: second, trigger: 'schedule', sources: [source()] },
      deps({ wrapHandlers: withNotices }),
    );
    expect(sent).toHaveLength(2);
    const notice = sent[1] as { subject: string; body: string };
    expect(notice.subject).toBe('backup-validator FAIL: 1 backup(s)');
    expect(notice.body).toContain(`run ${second}`);
    expect(notice.body).toMatch(
      new RegExp(`- ${webName} \\(series [^)]*web\\): (ARCHIVE_CORRUPT|CHECKSUM_MISMATCH): `),
    );
    expect(notice.body).not.toContain('db-');
    // The second run's message dates the failure from the first run that saw it: that run's
    // earliest record of the backup (its stages may be recorded on either side of a minute).
    const firstRun = await ledger.getRun(first);
    const ofWeb = firstRun?.results.filter((r) => r.backupId.endsWith(webName)) ?? [];
    expect(ofWeb.some((r) => r.status === 'FAIL')).toBe(true);
    const since = ofWeb.map((r) => r.at).sort()[0] ?? '';
    expect(notice.body).toContain(`failing since ${since.slice(0, 16).replace('T', ' ')} UTC`);
    expect(notice.body).toContain(`reports/${second}.html`);
  });

  it('reports RESTORE_FAILED when the sandbox process crashes, and the run still ends', async () => {
    await healthyArchive(`db-${stamp(1)}.tar.gz`, { 'db.sql': 'SELECT 1;' });
    const crashing = join(scratch, 'crash.mjs');
    await writeFile(crashing, 'process.kill(process.pid, "SIGKILL");\n');
    const id = runId();
    const report = await runPipelineLocally(
      ctx,
      { runId: id, trigger: 'console', sources: [source()] },
      deps({ restore: localRestore(new LocalSandbox({ entry: crashing, scratch })) }),
    );
    expect(report.status).toBe('FAIL');
    expect(report.backups[0]?.integrity.status).toBe('PASS');
    expect(report.backups[0]?.restore.status).toBe('FAIL');
    expect(report.backups[0]?.findings.map((f) => f.code)).toEqual(['RESTORE_FAILED']);
  });

  it('records a stopped Fargate task (the step fails) as RESTORE_FAILED through the Catch', async () => {
    await healthyArchive(`db-${stamp(1)}.tar.gz`, { 'db.sql': 'SELECT 1;' });
    const stopped = Object.assign(new Error('Essential container in task exited (exit code 137)'), {
      name: 'Sandbox.TaskStopped',
    });
    const report = await runPipelineLocally(
      ctx,
      { runId: runId(), trigger: 'schedule', sources: [source()] },
      deps({
        restore: async () => {
          throw stopped;
        },
      }),
    );
    expect(report.status).toBe('FAIL');
    expect(report.backups[0]?.findings).toEqual([
      expect.objectContaining({ code: 'RESTORE_FAILED', message: expect.stringContaining('exit code 137') }),
    ]);
  });

  it('issue 12: a sandbox task that failed to launch is retried with a new task, not reported as RESTORE_FAILED', async () => {
    await healthyArchive(`db-${stamp(1)}.tar.gz`, { 'db.sql': 'SELECT 1;' });
    const real = localRestore(new LocalSandbox({ entry: sandboxEntry, env: sandboxEnvironment(), scratch }));
    let launches = 0;
    const report = await runPipelineLocally(
      ctx,
      { runId: runId(), trigger: 'schedule', sources: [source()] },
      deps({
        restore: async (stageContext, item) => {
          launches++;
          if (launches === 1) {
            throw Object.assign(
              new Error('CannotPullContainerError: pull access denied; stop code TaskFailedToStart'),
              {
                name: 'Sandbox.LaunchFailed',
              },
            );
          }
          return real(stageContext, item);
        },
      }),
    );
    expect(launches).toBe(2);
    expect(report.status).toBe('PASS');
    expect(report.backups[0]?.restore.status).toBe('PASS');
  });

  it('retries a Lambda that throws once and the run succeeds', async () => {
    await healthyArchive(`db-${stamp(1)}.tar.gz`, { 'db.sql': 'SELECT 1;' });
    let calls = 0;
    const flaky = (handlers: TaskHandlers): TaskHandlers => ({
      ...handlers,
      CheckShard: async (input) => {
        calls++;
        if (calls === 1)
          throw Object.assign(new Error('Rate exceeded'), { name: 'Lambda.TooManyRequestsException' });
        return handlers.CheckShard(input);
      },
    });
    const report = await runPipelineLocally(
      ctx,
      { runId: runId(), trigger: 'console', sources: [source()] },
      deps({ wrapHandlers: flaky }),
    );
    expect(calls).toBe(2);
    expect(report.status).toBe('PASS');
  });

  it('checks a backup too large for the integrity Lambda in the sandbox instead, whatever the restore policy', async () => {
    const older = `db-${stamp(30)}.tar.gz`;
    const newer = `db-${stamp(1)}.tar.gz`;
    await healthyArchive(older, { 'db.sql': 'SELECT 0;' });
    await healthyArchive(newer, { 'db.sql': 'SELECT 1;' });
    // A one-byte budget sends every backup to the sandbox.
    const tinyLambda = makeIntegrityHandler(() => ctx, 1);
    const report = await runPipelineLocally(
      ctx,
      { runId: runId(), trigger: 'schedule', sources: [source()] },
      deps({
        wrapHandlers: (handlers) => ({
          ...handlers,
          CheckShard: async (input) => ({
            Payload: JSON.parse(JSON.stringify(await tinyLambda(input.Payload as never))),
          }),
        }),
      }),
    );
    expect(report.status).toBe('PASS');
    expect(
      report.backups.map((b) => [b.id.slice(source().length + 1), b.integrity.status, b.restore.status]),
    ).toEqual([
      [older, 'PASS', 'PASS'],
      [newer, 'PASS', 'PASS'],
    ]);
  });

  describe('every caught error reaches the report (issue 9)', () => {
    const throwing = (name: string, message: string) => async (): Promise<never> => {
      throw Object.assign(new Error(message), { name });
    };

    async function sourceKeys(): Promise<string[]> {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      return (listed.Contents ?? []).map((o) => o.Key as string).sort();
    }

    /** The run's report, read back, and the ledger's verdict of the run: both must say FAIL. */
    async function failedRun(id: string, report: RunReport) {
      expect(report.runId).toBe(id);
      expect(report.status).toBe('FAIL');
      expect((await ledger.getRun(id))?.run.status).toBe('FAIL');
      return report.findings.filter((f) => f.code === 'CHECK_FAILED').map((f) => f.message);
    }

    it('issue 9.1: SelectRestores throws: the report exists, the run FAILs with a CHECK_FAILED naming SelectRestores', async () => {
      await healthyArchive(`db-${stamp(1)}.tar.gz`, { 'db.sql': 'SELECT 1;' });
      const id = runId();
      const report = await runPipelineLocally(
        ctx,
        { runId: id, trigger: 'schedule', sources: [source()] },
        deps({
          wrapHandlers: (h) => ({ ...h, SelectRestores: throwing('LedgerError', 'ledger table throttled') }),
        }),
      );
      expect(await failedRun(id, report)).toEqual([
        expect.stringMatching(/^pipeline step SelectRestores failed: LedgerError: ledger table throttled/),
      ]);
      expect(report.backups.map((b) => [b.integrity.status, b.restore.status])).toEqual([
        ['PASS', 'SKIPPED'],
      ]);
    });

    it('issue 9.1: RecordIntegrityFailure throws inside the Integrity map: the report exists, the run FAILs with a CHECK_FAILED naming Integrity', async () => {
      await healthyArchive(`db-${stamp(1)}.tar.gz`, { 'db.sql': 'SELECT 1;' });
      const id = runId();
      const report = await runPipelineLocally(
        ctx,
        { runId: id, trigger: 'schedule', sources: [source()] },
        deps({
          wrapHandlers: (h) => ({
            ...h,
            CheckShard: throwing('StoreError', 'source bucket unreachable'),
            RecordIntegrityFailure: throwing('LedgerError', 'cannot record: ledger table unreachable'),
          }),
        }),
      );
      expect(await failedRun(id, report)).toEqual([
        expect.stringMatching(
          /^pipeline step Integrity failed: LedgerError: cannot record: ledger table unreachable/,
        ),
      ]);
      // The backup the map left unchecked FAILs on its own too, never a PASS without a check.
      expect(report.backups.map((b) => [b.integrity.status, b.status])).toEqual([['SKIPPED', 'FAIL']]);
      expect(report.backups[0]?.findings).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            code: 'CHECK_FAILED',
            message: expect.stringMatching(
              /^no integrity verdict: pipeline step Integrity failed: LedgerError: cannot record/,
            ),
          }),
        ]),
      );
    });

    it('issue 9.1: RecordRestoreFailure throws inside the Restores map: the report exists, the run FAILs with a CHECK_FAILED naming Restores', async () => {
      await healthyArchive(`db-${stamp(1)}.tar.gz`, { 'db.sql': 'SELECT 1;' });
      const id = runId();
      const report = await runPipelineLocally(
        ctx,
        { runId: id, trigger: 'schedule', sources: [source()] },
        deps({
          restore: throwing('Sandbox.TaskStopped', 'Essential container exited (exit code 137)'),
          wrapHandlers: (h) => ({
            ...h,
            RecordRestoreFailure: throwing('LedgerError', 'cannot record: ledger table unreachable'),
          }),
        }),
      );
      const messages = await failedRun(id, report);
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatch(/^pipeline step Restores failed: /);
      expect(messages[0]).toContain('ledger table unreachable');
      expect(report.backups.map((b) => [b.integrity.status, b.restore.status])).toEqual([
        ['PASS', 'SKIPPED'],
      ]);
    });

    it('issue 9.1: Redundancy throws: the report exists, the run FAILs with a CHECK_FAILED naming Redundancy, and each backup needing copies FAILs with REDUNDANCY_MISSING', async () => {
      const db = `db-${stamp(1)}.tar.gz`;
      const web = `web-${stamp(1)}.tar.gz`;
      await healthyArchive(db, { 'db.sql': 'SELECT 1;' });
      await healthyArchive(web, { 'index.html': '<html>' });
      const id = runId();
      const report = await runPipelineLocally(
        ctx,
        {
          runId: id,
          trigger: 'schedule',
          sources: [source()],
          config: { series: { db: { redundancy: { targets: [`s3://${bucket}-copies/db`] } } } },
        },
        deps({ wrapHandlers: (h) => ({ ...h, CopyShard: throwing('LedgerError', 'ledger throttled') }) }),
      );
      expect(await failedRun(id, report)).toEqual([
        expect.stringMatching(/^pipeline step Redundancy failed: LedgerError: ledger throttled/),
      ]);
      expect(statusByName(report)).toEqual({ [db]: 'FAIL', [web]: 'PASS' });
      expect(report.backups.find((b) => b.series === `${source()}/db`)?.findings).toEqual([
        expect.objectContaining({
          code: 'REDUNDANCY_MISSING',
          message: expect.stringContaining('LedgerError: ledger throttled'),
        }),
      ]);
    });

    it('issue 9.5: a target inside the source, given with the run, is refused before any copy: every backup needing copies FAILs with REDUNDANCY_MISSING naming the overlap', async () => {
      const older = `db-${stamp(30)}.tar.gz`;
      const newer = `db-${stamp(1)}.tar.gz`;
      const web = `web-${stamp(1)}.tar.gz`;
      await healthyArchive(older, { 'db.sql': 'SELECT 0;' });
      await healthyArchive(newer, { 'db.sql': 'SELECT 1;' });
      await healthyArchive(web, { 'index.html': '<html>' });
      const before = await sourceKeys();
      const id = runId();
      const report = await runPipelineLocally(
        ctx,
        {
          runId: id,
          trigger: 'console',
          sources: [source()],
          // The source lists `backups/`: `backups//copies` is inside it however it is spelt.
          config: { series: { db: { redundancy: { targets: [`s3://${bucket}/backups//copies/`] } } } },
        },
        deps(),
      );
      const messages = await failedRun(id, report);
      expect(messages).toEqual([
        expect.stringMatching(/^pipeline step Redundancy failed: UsageError: .*overlaps the source/),
      ]);
      expect(statusByName(report)).toEqual({ [older]: 'FAIL', [newer]: 'FAIL', [web]: 'PASS' });
      for (const b of report.backups.filter((x) => x.series === `${source()}/db`)) {
        expect(b.findings).toEqual([
          expect.objectContaining({
            code: 'REDUNDANCY_MISSING',
            message: expect.stringMatching(/redundancy could not run: UsageError: .*overlaps the source/),
          }),
        ]);
      }
      expect(await sourceKeys()).toEqual(before);
    });
  });
});
