import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
} from '@aws-sdk/client-sfn';
import { afterEach, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { runSandbox } from '../../containers/restore-sandbox/main.ts';
import { LocalSandbox } from '../../lib/adapters/local-sandbox.ts';
import { DEFAULT_POLICY } from '../../lib/core/config.ts';
import type { RestoreResult } from '../../lib/core/model.ts';
import type { RestoreJob } from '../../lib/core/restore/launcher.ts';
import { serializeBackup } from '../../lib/core/run-store.ts';
import { sandboxBundle } from '../support/cli.ts';
import {
  type Arena,
  archiveBackup,
  directoryBackup,
  makeArena,
  rawTar,
} from '../support/hostile-archives.ts';
import { corruptSqlitePage, makeSqlite } from '../support/sqlite.ts';

let arena: Arena;
beforeEach(async () => {
  arena = await makeArena('bv-sandbox-it-');
});
afterEach(async () => {
  await arena.cleanup();
});

async function healthyArchive(): Promise<RestoreJob> {
  const source = path.join(arena.base, 'src');
  execFileSync('mkdir', ['-p', path.join(source, 'db')]);
  await writeFile(path.join(source, 'db/state.json'), '{"ok":true}');
  await writeFile(path.join(source, 'readme.txt'), 'hello\n');
  execFileSync('sh', ['-c', 'sha256sum db/state.json readme.txt > SHA256SUMS'], { cwd: source });
  execFileSync('tar', ['-czf', path.join(arena.store, 'app-20250625_114622.tar.gz'), '-C', source, '.']);
  const backup = await archiveBackup(arena.store, 'app-20250625_114622.tar.gz');
  return {
    runId: 'run-it',
    restore: 0,
    source: arena.store,
    backup: serializeBackup(backup),
    policy: DEFAULT_POLICY,
    probes: [{ match: '*.txt', command: 'grep -c hello {file}', expect: '1', timeoutSeconds: 30 }],
  };
}

describe('local sandbox launcher (the container entry point in a child process)', () => {
  it('restores an archive from a folder and answers with the result', async () => {
    const logs: string[] = [];
    const launcher = new LocalSandbox({
      scratch: path.join(arena.base, 'scratch'),
      onLog: (l) => logs.push(l),
    });
    const result = await launcher.launch(await healthyArchive());
    expect(result.findings).toEqual([]);
    expect(result.status).toBe('PASS');
    expect(result.filesRestored).toBe(3);
    expect(logs.join('\n')).toMatch(/restore PASS/);
    // The per-restore folder is gone afterwards.
    expect(execFileSync('ls', ['-A', path.join(arena.base, 'scratch')]).toString()).toBe('');
  });

  it('reports an unsafe archive as FAIL through the process boundary', async () => {
    await writeFile(path.join(arena.store, 'evil.tar'), rawTar([{ name: '../escape.txt', body: 'x' }]));
    const job: RestoreJob = {
      ...(await healthyArchive()),
      backup: serializeBackup(await archiveBackup(arena.store, 'evil.tar')),
    };
    const result = await new LocalSandbox().launch(job);
    expect(result.status).toBe('FAIL');
    expect(result.findings.map((f) => f.code)).toEqual(['UNSAFE_PATH']);
  });

  it('turns a crashed child into RESTORE_FAILED with its exit code and last output', async () => {
    const crash = path.join(arena.base, 'crash.mjs');
    await writeFile(crash, 'process.stderr.write("native abort: out of memory\\n"); process.exit(3);');
    const result = await new LocalSandbox({ entry: crash }).launch(await healthyArchive());
    expect(result.status).toBe('FAIL');
    expect(result.findings).toHaveLength(1);
    expect(result.findings[0]?.code).toBe('RESTORE_FAILED');
    expect(result.findings[0]?.message).toMatch(
      /exited with code 3; its last output: native abort: out of memory/,
    );
  });

  it('turns a killed child into RESTORE_FAILED naming the signal', async () => {
    const killed = path.join(arena.base, 'killed.mjs');
    await writeFile(killed, 'process.kill(process.pid, "SIGKILL");');
    const result = await new LocalSandbox({ entry: killed }).launch(await healthyArchive());
    expect(result.findings[0]?.message).toMatch(/was killed by SIGKILL/);
  });

  it('issue 13: with reuse, restores run one after another on one long-lived worker, each in its own folder', async () => {
    const logs: string[] = [];
    const scratch = path.join(arena.base, 'scratch-reuse');
    const launcher = new LocalSandbox({ scratch, reuse: true, onLog: (l) => logs.push(l) });
    try {
      const healthy = await healthyArchive();
      await writeFile(path.join(arena.store, 'evil.tar'), rawTar([{ name: '../escape.txt', body: 'x' }]));
      const evil: RestoreJob = {
        ...healthy,
        backup: serializeBackup(await archiveBackup(arena.store, 'evil.tar')),
      };
      const results = [
        await launcher.launch(healthy),
        await launcher.launch(evil),
        await launcher.launch(healthy),
      ];
      expect(results.map((r) => r.status)).toEqual(['PASS', 'FAIL', 'PASS']);
      expect(results[1]?.findings.map((f) => f.code)).toEqual(['UNSAFE_PATH']);
      expect(results[2]?.filesRestored).toBe(3);
      const pids = new Set(logs.filter((l) => l.startsWith('sandbox worker pid ')));
      expect(pids.size).toBe(1);
      expect(logs.filter((l) => /^restore (PASS|FAIL)/.test(l))).toHaveLength(3);
      expect(execFileSync('ls', ['-A', scratch]).toString()).toBe('');
    } finally {
      await launcher.close();
    }
  });

  it('issue 13: with reuse, a worker that crashes fails its restore and the next restore gets a new worker', async () => {
    const flaky = path.join(arena.base, 'flaky.mjs');
    // Answers the first job, dies on the second: a crash between jobs must not outlive that job.
    await writeFile(
      flaky,
      `let jobs = 0;
      process.on('message', () => {
        if (++jobs === 2) process.exit(7);
        process.send({ code: 0, stdout: JSON.stringify({ backupId: String(process.pid), status: 'PASS', durationMs: 1, filesRestored: 0, bytesRestored: 0, phases: {}, findings: [] }) + '\\n' });
      });`,
    );
    const launcher = new LocalSandbox({ entry: flaky, reuse: true });
    try {
      const job = await healthyArchive();
      const first = await launcher.launch(job);
      const second = await launcher.launch(job);
      const third = await launcher.launch(job);
      expect(first.status).toBe('PASS');
      expect(second.status).toBe('FAIL');
      expect(second.findings[0]?.message).toMatch(/exited with code 7/);
      expect(third.status).toBe('PASS');
      expect(third.backupId).not.toBe(first.backupId);
    } finally {
      await launcher.close();
    }
  });

  it('issue 13: with maxWorkers, restores beyond the limit wait for a free worker', async () => {
    const echo = path.join(arena.base, 'echo.mjs');
    await writeFile(
      echo,
      `process.on('message', () => setTimeout(() => process.send({ code: 0, stdout: JSON.stringify({ backupId: String(process.pid), status: 'PASS', durationMs: 1, filesRestored: 0, bytesRestored: 0, phases: {}, findings: [] }) + '\\n' }), 50));`,
    );
    const launcher = new LocalSandbox({ entry: echo, reuse: true, maxWorkers: 1 });
    try {
      const job = await healthyArchive();
      const results = await Promise.all([launcher.launch(job), launcher.launch(job), launcher.launch(job)]);
      expect(results.map((r) => r.status)).toEqual(['PASS', 'PASS', 'PASS']);
      expect(new Set(results.map((r) => r.backupId)).size).toBe(1);
    } finally {
      await launcher.close();
    }
  });

  it('issue 13: warm() starts one worker ahead of the first restore, which runs on it; close() stops a warmed worker never used and settles once it exited', async () => {
    const started = path.join(arena.base, 'started');
    const echo = path.join(arena.base, 'echo-pid.mjs');
    await writeFile(
      echo,
      `import { appendFileSync } from 'node:fs';
      appendFileSync(${JSON.stringify(started)}, process.pid + '\\n');
      process.on('message', () => process.send({ code: 0, stdout: JSON.stringify({ backupId: String(process.pid), status: 'PASS', durationMs: 1, filesRestored: 0, bytesRestored: 0, phases: {}, findings: [] }) + '\\n' }));`,
    );
    const pids = () => (existsSync(started) ? readFileSync(started, 'utf8').trim().split('\n') : []);
    const job = await healthyArchive();
    const launcher = new LocalSandbox({ entry: echo, reuse: true });
    try {
      launcher.warm();
      launcher.warm();
      await vi.waitFor(() => expect(pids()).toHaveLength(1), { timeout: 30_000, interval: 20 });
      const result = await launcher.launch(job);
      expect(result.status).toBe('PASS');
      expect(result.backupId).toBe(pids()[0]);
      expect(pids()).toHaveLength(1);
    } finally {
      await launcher.close();
    }
    const unused = new LocalSandbox({ entry: echo, reuse: true });
    unused.warm();
    await vi.waitFor(() => expect(pids()).toHaveLength(2), { timeout: 30_000, interval: 20 });
    await unused.close();
    // close() settles once the worker exited and was reaped: nothing of it is left to signal.
    expect(() => process.kill(Number(pids()[1]), 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  });

  it('the bundle the image runs restores with plain node, its native SQLite probe included', async () => {
    // Built by bundleSandbox inside the repository, so it finds better-sqlite3 (left external) as the image does.
    const bundle = await sandboxBundle();
    const source = path.join(arena.base, 'dbsrc');
    execFileSync('mkdir', ['-p', source]);
    makeSqlite(path.join(source, 'good.db'));
    makeSqlite(path.join(source, 'bad.db'));
    await writeFile(
      path.join(source, 'bad.db'),
      corruptSqlitePage(readFileSync(path.join(source, 'bad.db'))),
    );
    execFileSync('tar', ['-czf', path.join(arena.store, 'db-20250625_114622.tar.gz'), '-C', source, '.']);
    const job: RestoreJob = {
      ...(await healthyArchive()),
      backup: serializeBackup(await archiveBackup(arena.store, 'db-20250625_114622.tar.gz')),
      probes: [],
    };
    const result = await new LocalSandbox({ entry: bundle }).launch(job);
    expect(result.filesRestored).toBe(2);
    expect(result.findings.map((f) => [f.code, f.object])).toEqual([
      ['NO_REFERENCE_CHECKSUM', 'db-20250625_114622.tar.gz'],
      ['PROBE_FAILED', 'bad.db'],
    ]);
    expect(result.findings.find((f) => f.code === 'PROBE_FAILED')?.message).toMatch(/SQLite/);
  });

  it('restores a directory backup from the local S3 server', async () => {
    const endpoint = inject('s3Endpoint');
    const s3 = new S3Client({
      endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    const bucket = `restore-it-${Date.now()}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const sum = (text: string) => createHash('sha256').update(text).digest('hex');
    const files = {
      'backups/20250625_114622/a.txt': 'alpha\n',
      'backups/20250625_114622/db/rows.json': '[1,2,3]',
      // The restore checks what it reads against it, as the integrity pass would.
      'backups/20250625_114622/SHA256SUMS': `${sum('alpha\n')}  a.txt\n${sum('[1,2,3]')}  db/rows.json\n`,
    };
    for (const [key, body] of Object.entries(files)) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `prod/${key}`, Body: body }));
    }
    // The same catalogue a folder would give.
    for (const [key, body] of Object.entries(files)) {
      execFileSync('mkdir', ['-p', path.dirname(path.join(arena.store, key))]);
      await writeFile(path.join(arena.store, key), body);
    }
    const backup = await directoryBackup(arena.store, 'backups/20250625_114622/');
    const url = `s3://${bucket}/prod`;
    const job: RestoreJob = {
      runId: 'run-s3',
      restore: 1,
      source: url,
      backup: serializeBackup({ ...backup, source: url, id: `${url}/backups/20250625_114622/` }),
      policy: DEFAULT_POLICY,
      probes: [],
    };
    const launcher = new LocalSandbox({
      env: {
        AWS_ENDPOINT_URL_S3: endpoint,
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
        AWS_REGION: 'us-east-1',
      },
    });
    const result = await launcher.launch(job);
    expect(result.findings).toEqual([]);
    expect(result).toMatchObject({ status: 'PASS', filesRestored: 2, bytesRestored: 13 });

    // A damaged copy in S3 (the catalogue says 6 bytes) is a mismatch, not a pass.
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'prod/backups/20250625_114622/a.txt',
        Body: 'alpha, changed\n',
      }),
    );
    const damaged = await launcher.launch(job);
    expect(damaged.status).toBe('FAIL');
    expect(damaged.findings.map((f) => [f.code, f.object])).toContainEqual(['RESTORE_MISMATCH', 'a.txt']);
    expect(damaged.findings.map((f) => [f.code, f.object])).toContainEqual(['CHECKSUM_MISMATCH', 'a.txt']);
  });
});

/** Records Step Functions commands: no local Step Functions server exists for task tokens. */
class RecordingSfn {
  readonly commands: Array<{ name: string; input: Record<string, unknown> }> = [];
  async send(command: { constructor: { name: string }; input: unknown }): Promise<never> {
    this.commands.push({ name: command.constructor.name, input: command.input as Record<string, unknown> });
    return {} as never;
  }
}

describe('container entry point with a task token', () => {
  it('answers SendTaskSuccess with the result and records it', async () => {
    const sfn = new RecordingSfn();
    const recorded: RestoreResult[] = [];
    const out: string[] = [];
    const job = await healthyArchive();
    const code = await runSandbox(
      { JOB: JSON.stringify(job), TASK_TOKEN: 'tok', SANDBOX_ROOT: arena.root },
      {
        stdout: (l) => out.push(l),
        stderr: () => {},
        sfn: () => sfn as never,
        record: async (_job, result) => {
          recorded.push(result);
        },
      },
    );
    expect(code).toBe(0);
    const result = JSON.parse(out[out.length - 1] as string) as RestoreResult;
    expect(result.status).toBe('PASS');
    expect(recorded).toEqual([result]);
    // issue 12: the first heartbeat goes out as the container starts, before any work.
    expect(sfn.commands.map((c) => c.name)).toEqual([
      SendTaskHeartbeatCommand.name,
      SendTaskSuccessCommand.name,
    ]);
    expect(JSON.parse(sfn.commands[1]?.input.output as string)).toEqual(result);
    expect(execFileSync('ls', ['-A', arena.root]).toString()).toBe('');
  });

  it('answers SendTaskFailure when the job cannot be loaded', async () => {
    const sfn = new RecordingSfn();
    const code = await runSandbox(
      { JOB: JSON.stringify({ runId: 'r', restore: 2 }), TASK_TOKEN: 'tok' },
      { stdout: () => {}, stderr: () => {}, sfn: () => sfn as never },
    );
    expect(code).toBe(1);
    expect(sfn.commands).toEqual([
      { name: SendTaskHeartbeatCommand.name, input: { taskToken: 'tok' } },
      {
        name: SendTaskFailureCommand.name,
        input: {
          taskToken: 'tok',
          error: 'Sandbox.RestoreFailed',
          cause: 'JOB names a stored restore job but RUN_STORE is not set: the task definition is incomplete',
        },
      },
    ]);
  });

  it('loads a job referenced in the run store', async () => {
    const job = await healthyArchive();
    const runStore = path.join(arena.base, 'runstore');
    execFileSync('mkdir', ['-p', path.join(runStore, 'runs/run-it/restores')]);
    await writeFile(path.join(runStore, 'runs/run-it/restores/0.json'), JSON.stringify(job));
    const out: string[] = [];
    const code = await runSandbox(
      { JOB: JSON.stringify({ runId: 'run-it', restore: 0 }), RUN_STORE: runStore, SANDBOX_ROOT: arena.root },
      { stdout: (l) => out.push(l), stderr: () => {} },
    );
    expect(code).toBe(0);
    expect(JSON.parse(out[0] as string).status).toBe('PASS');
  });

  it('issue 11: in a Fargate task (LOG_FORMAT=json) progress goes to stderr as JSON lines with runId and backup; stdout still ends with the result', async () => {
    const job = await healthyArchive();
    const out: string[] = [];
    const err: string[] = [];
    const code = await runSandbox(
      { JOB: JSON.stringify(job), SANDBOX_ROOT: arena.root, LOG_FORMAT: 'json' },
      { stdout: (l) => out.push(l), stderr: (l) => err.push(l) },
    );
    expect(code).toBe(0);
    expect(JSON.parse(out.at(-1) as string).status).toBe('PASS');
    expect(err.length).toBeGreaterThan(1);
    for (const line of err) {
      expect(JSON.parse(line)).toMatchObject({
        level: 'INFO',
        stage: 'restore',
        runId: job.runId,
        backup: job.backup.id,
        message: expect.any(String),
        timestamp: expect.any(String),
      });
    }
    expect(JSON.parse(err.at(-1) as string)).toMatchObject({
      message: expect.stringMatching(/^restore PASS/),
      status: 'PASS',
    });
  });

  it("issue 11: run locally, the sandbox keeps its plain stderr lines (a crash's finding quotes them)", async () => {
    const job = await healthyArchive();
    const err: string[] = [];
    const code = await runSandbox(
      { JOB: JSON.stringify(job), SANDBOX_ROOT: arena.root },
      { stdout: () => {}, stderr: (l) => err.push(l) },
    );
    expect(code).toBe(0);
    expect(err[0]).toMatch(/^restoring /);
    expect(err.at(-1)).toMatch(/^restore PASS in \d+ ms/);
  });
});
