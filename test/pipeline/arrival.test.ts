import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import {
  ARRIVAL_WINDOW_SECONDS,
  type ArrivalMessage,
  arrivalExecutionName,
  makeArrivalHandler,
  type SqsEvent,
} from '../../functions/arrival/handler.ts';
import type { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import { LocalSandbox } from '../../lib/adapters/local-sandbox.ts';
import { S3_CLIENT_DEFAULTS, S3Store } from '../../lib/adapters/s3-store.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';
import { TASK_STATE_FUNCTIONS } from '../../lib/pipeline/definition.ts';
import { type LocalRunDeps, localRestore, runPipelineLocally } from '../../lib/pipeline/local-runner.ts';
import { gzip, packTar, sha256Hex, sha256sums } from '../support/archives.ts';
import { flattenCfn, synthStack } from '../support/cdk.ts';
import { sandboxBundle } from '../support/cli.ts';
import { freshLedger } from '../support/ledger.ts';
import { stampHoursAgo as stamp } from '../support/time.ts';

/** Issue 12: a run started by arrivals checks only what arrived, and a burst of arrivals is one run. */

type Sent = { name: string; input: Record<string, unknown> };

/** Step Functions as the arrival Lambda sees it: names are unique, a taken name is ExecutionAlreadyExists. */
class FakeStepFunctions {
  readonly started = new Map<string, { input: string; startDate: Date }>();
  readonly sent: Sent[] = [];
  constructor(public clock: () => Date = () => new Date()) {}
  async send(command: { constructor: { name: string }; input: Record<string, unknown> }): Promise<unknown> {
    this.sent.push({ name: command.constructor.name, input: command.input });
    if (command.constructor.name === 'StartExecutionCommand') {
      const name = command.input.name as string;
      const existing = this.started.get(name);
      if (existing && existing.input !== command.input.input) {
        throw Object.assign(new Error(`Execution Already Exists: '${name}'`), {
          name: 'ExecutionAlreadyExists',
        });
      }
      if (!existing)
        this.started.set(name, { input: command.input.input as string, startDate: this.clock() });
      return { executionArn: `arn:aws:states:eu-west-1:1:execution:m:${name}` };
    }
    if (command.constructor.name === 'DescribeExecutionCommand') {
      const name = String(command.input.executionArn).split(':').pop() as string;
      return { startDate: this.started.get(name)?.startDate, status: 'RUNNING' };
    }
    throw new Error(`unexpected command ${command.constructor.name}`);
  }
  starts(): Sent[] {
    return this.sent.filter((s) => s.name === 'StartExecutionCommand');
  }
}

const MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:BackupValidator';

function batch(
  messages: Array<Partial<ArrivalMessage> & { object: string; time: string }>,
  sources: string[],
): SqsEvent {
  return {
    Records: messages.map((m, i) => ({
      messageId: `m-${i}-${m.object}`,
      body: JSON.stringify({ trigger: 'event', sources, config: { defaults: { rpoMinutes: 1440 } }, ...m }),
    })),
  };
}

describe('issue 12: the arrival Lambda', () => {
  const source = 's3://prod-backups/nightly';
  const at = (iso: string) => new Date(iso);

  it('starts one run for a burst of 50 objects of one upload, carrying all of them, named by source and window', async () => {
    const sfn = new FakeStepFunctions(() => at('2025-06-26T03:02:10Z'));
    const handler = makeArrivalHandler(() => ({ sfn, stateMachineArn: MACHINE, log: () => {} }));
    const objects = Array.from({ length: 50 }, (_, i) => ({
      object: `${source}/20250626_030000/part-${String(i).padStart(2, '0')}.tar.gz`,
      time: new Date(Date.parse('2025-06-26T03:00:00Z') + i * 1000).toISOString(),
    }));
    expect(await handler(batch(objects, [source]))).toEqual({ batchItemFailures: [] });
    const starts = sfn.starts();
    expect(starts).toHaveLength(1);
    expect(starts[0]?.input.name).toBe(
      arrivalExecutionName([source], { defaults: { rpoMinutes: 1440 } }, at('2025-06-26T03:00:00Z')),
    );
    expect(starts[0]?.input.name).toMatch(/^arrival-[0-9a-f]{16}-20250626T030000Z$/);
    expect(JSON.parse(String(starts[0]?.input.input))).toEqual({
      trigger: 'event',
      sources: [source],
      config: { defaults: { rpoMinutes: 1440 } },
      objects: objects.map((o) => o.object).sort(),
    });
  });

  it('a second batch of the same burst finds the name taken and is covered when the run started after its objects landed', async () => {
    const sfn = new FakeStepFunctions(() => at('2025-06-26T03:02:10Z'));
    const handler = makeArrivalHandler(() => ({ sfn, stateMachineArn: MACHINE, log: () => {} }));
    await handler(batch([{ object: `${source}/a.tar.gz`, time: '2025-06-26T03:00:00Z' }], [source]));
    const second = await handler(
      batch([{ object: `${source}/b.tar.gz`, time: '2025-06-26T03:01:30Z' }], [source]),
    );
    expect(second).toEqual({ batchItemFailures: [] });
    expect(sfn.started.size).toBe(1);
    expect(sfn.sent.map((s) => s.name)).toEqual([
      'StartExecutionCommand',
      'StartExecutionCommand',
      'DescribeExecutionCommand',
    ]);
  });

  it('an object that landed after the window run started gets a follow-up run; the next window gets its own run', async () => {
    const sfn = new FakeStepFunctions(() => at('2025-06-26T03:02:10Z'));
    const handler = makeArrivalHandler(() => ({ sfn, stateMachineArn: MACHINE, log: () => {} }));
    await handler(batch([{ object: `${source}/a.tar.gz`, time: '2025-06-26T03:00:00Z' }], [source]));
    await handler(batch([{ object: `${source}/late.tar.gz`, time: '2025-06-26T03:05:00Z' }], [source]));
    const later = new Date(Date.parse('2025-06-26T03:00:00Z') + ARRIVAL_WINDOW_SECONDS * 1000).toISOString();
    await handler(batch([{ object: `${source}/next.tar.gz`, time: later }], [source]));
    const names = [...sfn.started.keys()];
    expect(names).toHaveLength(3);
    expect(names[1]).toBe(`${names[0]}-030500`);
    expect(names[2]).toMatch(/-20250626T031500Z$/);
  });

  it('a message that is not an arrival, or a run that cannot start, is a failed item (retried, then dead-lettered)', async () => {
    const sfn = {
      send: async () => {
        throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      },
    };
    const handler = makeArrivalHandler(() => ({ sfn, stateMachineArn: MACHINE, log: () => {} }));
    const event = batch([{ object: `${source}/a.tar.gz`, time: '2025-06-26T03:00:00Z' }], [source]);
    event.Records.push({ messageId: 'junk', body: '{"hello":"world"}' });
    const { batchItemFailures } = await handler(event);
    expect(batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
      ['junk', `m-0-${source}/a.tar.gz`].sort(),
    );
  });
});

describe('issue 12: an arrival run, executing the synthesized state machine against S3 and DynamoDB servers', () => {
  let s3Config: S3ClientConfig;
  let client: S3Client;
  let definitionText: string;
  let scratch: string;
  let ledger: DynamoDbLedger;
  let bucket: string;
  let ctx: StageContext;
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  let sandboxEntry: string;

  beforeAll(async () => {
    s3Config = {
      ...S3_CLIENT_DEFAULTS,
      endpoint: inject('s3Endpoint'),
      forcePathStyle: true,
      region: 'us-east-1',
      credentials,
    };
    client = new S3Client(s3Config);
    const { template } = synthStack(
      { sources: ['s3://example-backups/db'], validateOnArrival: true },
      { nag: false },
    );
    const [machine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
    definitionText = flattenCfn(machine?.Properties.DefinitionString);
    scratch = await mkdtemp(join(tmpdir(), 'bv-arrival-'));
    sandboxEntry = await sandboxBundle();
  });

  afterAll(async () => {
    client.destroy();
    await rm(scratch, { recursive: true, force: true });
  });

  beforeEach(async () => {
    bucket = `arrive-${randomBytes(4).toString('hex')}`;
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

  async function healthyArchive(name: string, files: Record<string, string>): Promise<void> {
    const tar = await packTar([
      { name: 'SHA256SUMS', content: sha256sums(files) },
      ...Object.entries(files).map(([n, content]) => ({ name: n, content })),
    ]);
    const gz = gzip(tar);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `backups/${name}`, Body: gz }));
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `backups/${name}.sha256`,
        Body: `${sha256Hex(gz)}  ${name}\n`,
      }),
    );
  }

  function deps(): LocalRunDeps {
    return {
      restore: localRestore(
        new LocalSandbox({
          entry: sandboxEntry,
          env: {
            AWS_ENDPOINT_URL_S3: inject('s3Endpoint'),
            AWS_ACCESS_KEY_ID: credentials.accessKeyId,
            AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
            AWS_REGION: 'us-east-1',
          },
          scratch,
        }),
      ),
      openTarget: (url) => new S3Store(url, { clientConfig: s3Config }),
      definitionText,
      retryIntervals: Object.fromEntries(Object.keys(TASK_STATE_FUNCTIONS).map((s) => [s, 0])),
    };
  }

  it('checks the new backups of the upload (one run for two batches), restores per policy, and leaves the other series alone', async () => {
    const source = `s3://${bucket}/backups`;
    await healthyArchive(`db-${stamp(26)}.tar.gz`, { 'db.sql': '-- dump\nSELECT 1;\n' });
    // A stale series: a full run says RPO_EXCEEDED for it; a run for a db upload must not judge it.
    await healthyArchive(`web-${stamp(72)}.tar.gz`, { 'index.html': '<html></html>' });
    const scheduled = await runPipelineLocally(
      ctx,
      { runId: 'weekly', trigger: 'schedule', sources: [source] },
      deps(),
    );
    expect(scheduled.backups).toHaveLength(2);
    expect(scheduled.findings.map((f) => f.code)).toContain('RPO_EXCEEDED');

    // Tonight's upload: two backups; SQS hands the two arrivals to two batches.
    const newDb = `db-${stamp(0.5)}.tar.gz`;
    const newLogs = `logs-${stamp(0.5)}.tar.gz`;
    await healthyArchive(newDb, { 'db.sql': '-- dump\nSELECT 2;\n' });
    await healthyArchive(newLogs, { 'app.log': 'started\n' });
    const landed = new Date(Date.now() - 60_000).toISOString();
    const sfn = new FakeStepFunctions();
    const arrival = makeArrivalHandler(() => ({ sfn, stateMachineArn: MACHINE, log: () => {} }));
    const arrived = (key: string) => ({
      Records: [
        {
          messageId: key,
          body: JSON.stringify({
            trigger: 'event',
            object: `s3://${bucket}/backups/${key}`,
            time: landed,
            sources: [source],
          }),
        },
      ],
    });
    expect(await arrival(arrived(newDb))).toEqual({ batchItemFailures: [] });
    expect(await arrival(arrived(newLogs))).toEqual({ batchItemFailures: [] });
    expect(sfn.started.size).toBe(1);
    const [[name, started] = []] = [...sfn.started.entries()];
    const input = JSON.parse(started?.input ?? '{}') as {
      trigger: 'event';
      sources: string[];
      objects: string[];
    };
    expect(input.objects).toEqual([`s3://${bucket}/backups/${newDb}`]);

    const report = await runPipelineLocally(ctx, { runId: name as string, ...input }, deps());
    expect(report.backups.map((b) => b.id).sort()).toEqual([`${source}/${newDb}`, `${source}/${newLogs}`]);
    expect(report.backups.map((b) => [b.integrity.status, b.restore.status])).toEqual([
      ['PASS', 'PASS'],
      ['PASS', 'PASS'],
    ]);
    expect(report.findings.map((f) => f.code)).not.toContain('RPO_EXCEEDED');
    expect(report.status).toBe('PASS');
    expect((await ledger.getRun(name as string))?.run.trigger).toBe('event');
  });
});
