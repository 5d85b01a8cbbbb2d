import { randomBytes } from 'node:crypto';
import {
  access,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeReportHandler } from '../../functions/report/handler.ts';
import type { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import { LedgerError, StoreError } from '../../lib/core/errors.ts';
import type { RunReport } from '../../lib/core/model.ts';
import { readJson, runKeys } from '../../lib/core/run-store.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';
import { discoverStage } from '../../lib/core/stages/discover.ts';
import { integrityStage } from '../../lib/core/stages/integrity.ts';
import { redundancyStage } from '../../lib/core/stages/redundancy.ts';
import { reportStage } from '../../lib/core/stages/report.ts';
import { gzip, packTar, sha256Hex, sha256sums } from '../support/archives.ts';
import { runCli } from '../support/cli.ts';
import { folderStageContext, freshLedger } from '../support/ledger.ts';
import { stampHoursAgo as stamp } from '../support/time.ts';

let dir: string;
let src: string;
const archive = `db-${stamp(1)}.tar.gz`;

/** Every file under a folder, relative to it. */
async function tree(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.map((e) => relative(root, join(e.parentPath, e.name))).sort();
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

beforeAll(async () => {
  dir = await realpath(await mkdtemp(join(tmpdir(), 'bv-targets-')));
  src = join(dir, 'src');
  await mkdir(src);
  await healthyArchive(src, archive);
  await symlink(src, join(dir, 'link'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function healthyArchive(folder: string, name: string): Promise<void> {
  const files = {
    'db.sql': '-- PostgreSQL database dump\nSELECT 1;\n-- PostgreSQL database dump complete\n',
  };
  const gz = gzip(
    await packTar([
      { name: 'SHA256SUMS', content: sha256sums(files) },
      ...Object.entries(files).map(([n, content]) => ({ name: n, content })),
    ]),
  );
  await writeFile(join(folder, name), gz);
  await writeFile(join(folder, `${name}.sha256`), `${sha256Hex(gz)}  ${name}\n`);
}

async function comprehensive(name: string, targets: string[], source = 'src') {
  const config = join(dir, `${name}.json`);
  await writeFile(config, JSON.stringify({ defaults: { redundancy: { targets } } }));
  const ledger = join(dir, name, 'ledger');
  const json = join(dir, `${name}-report.json`);
  const result = await runCli(
    ['comprehensive', '--source', source, '--config', config, '--ledger', ledger, '--json', json, '--quiet'],
    dir,
  );
  return { ...result, json, stateDir: join(dir, name) };
}

describe('redundancy targets are checked against the sources before anything runs', () => {
  it.each([
    ['relative', 'src/copies', 'src'],
    ['through a symlink to the source', 'link/copies', 'src'],
    ['absolute through a symlink', join('LINK', 'copies'), 'src'],
    ['beside a source given through a symlink', 'src/copies', 'link'],
    ['the source itself, spelt with a trailing slash', 'src/', 'src'],
  ])(
    'issue 9.5: a target inside the source (%s) exits 2 and writes nothing, in the source or anywhere',
    async (name, target, source) => {
      const before = await tree(src);
      const result = await comprehensive(
        `refused-${name.replace(/\W+/g, '-')}`,
        [target.replace('LINK', join(dir, 'link'))],
        source,
      );
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/redundancy target .* overlaps the source/);
      expect(result.stdout).toBe('');
      expect(await tree(src)).toEqual(before);
      // Neither the ledger nor the run store beside it was made.
      expect(await exists(result.stateDir)).toBe(false);
      expect(await exists(result.json)).toBe(false);
    },
  );

  it.each([
    ['an s3 target under an s3 source', 's3://backups/db', 's3://backups/db/copies'],
    ['a whole bucket holding an s3 source', 's3://backups/db', 's3://backups'],
    ['a target URL no store opens', 'src', 'ftp://mirror.example/copies'],
  ])('issue 9.5: %s exits 2 before anything runs', async (_name, source, target) => {
    const result = await comprehensive(`s3-${target.replace(/\W+/g, '-')}`, [target], source);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`redundancy target ${target}`);
    expect(await exists(result.stateDir)).toBe(false);
  });

  it('issue 9.5: a relative target beside the source is accepted, resolved from the working folder, and gets a verified copy', async () => {
    const before = await tree(src);
    const result = await comprehensive('beside', ['copies']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await tree(join(dir, 'copies'))).toEqual([archive, `${archive}.sha256`]);
    expect(await readFile(join(dir, 'copies', archive))).toEqual(await readFile(join(src, archive)));
    expect(await tree(src)).toEqual(before);
    const report = JSON.parse(await readFile(result.json, 'utf8')) as RunReport;
    expect(report.backups.map((b) => [b.status, b.findings.map((f) => f.code)])).toEqual([['PASS', []]]);
  });
});

describe("a redundancy failure outside one object's copy", () => {
  let ledger: DynamoDbLedger;
  let ctx: StageContext;
  let source: string;
  const older = `db-${stamp(30)}.tar.gz`;
  const newer = `db-${stamp(1)}.tar.gz`;
  const web = `web-${stamp(1)}.tar.gz`;

  /** A checked run of three healthy backups, only the db series asking for copies. */
  beforeEach(async () => {
    const id = randomBytes(3).toString('hex');
    source = join(dir, `stage-src-${id}`);
    await mkdir(source);
    for (const name of [older, newer, web]) await healthyArchive(source, name);
    ledger = await freshLedger();
    ctx = folderStageContext(ledger, join(dir, `stage-runs-${id}`));
    const discovery = await discoverStage(ctx, {
      runId: 'stage',
      trigger: 'cli',
      command: 'comprehensive',
      sources: [source],
      config: { series: { db: { redundancy: { targets: [join(dir, `stage-copies-${id}`)] } } } },
    });
    for (const shard of discovery.shards) await integrityStage(ctx, shard);
  });
  afterEach(async () => {
    await ledger.close();
  });

  const byName = (report: RunReport) =>
    Object.fromEntries(report.backups.map((b) => [b.id.slice(source.length + 1), b]));

  it('issue 9.5: a target store that cannot be opened FAILs every backup needing copies with REDUNDANCY_MISSING and the cause; the others keep their verdict', async () => {
    const cause = 'no credentials for the copy target';
    await expect(
      redundancyStage(ctx, 'stage', (url) => {
        throw new StoreError(cause, 'credentials', url);
      }),
    ).rejects.toThrow(cause);

    const { report } = await reportStage(ctx, 'stage');
    expect(report.status).toBe('FAIL');
    const backups = byName(report);
    expect(backups[web]?.status).toBe('PASS');
    for (const name of [older, newer]) {
      expect(backups[name]?.status, name).toBe('FAIL');
      expect(backups[name]?.findings, name).toEqual([
        expect.objectContaining({
          code: 'REDUNDANCY_MISSING',
          message: `no copy verified: redundancy could not run: StoreError: ${cause}`,
        }),
      ]);
    }
    expect((await readdir(dir)).filter((f) => f.startsWith('stage-copies-'))).toEqual([]);
  });

  it('issue 9.1: a report whose Redundancy step failed and which cannot mark the backups still reports, FAIL, saying both', async () => {
    const throttled = new Proxy(ledger, {
      get(target, prop) {
        if (prop === 'recordResults')
          return async () => {
            throw new LedgerError('write throttled', 'table');
          };
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const report = makeReportHandler(
      () => ({ ...ctx, ledger: throttled }),
      () => {},
    );
    const result = await report({
      runId: 'stage',
      state: { redundancyError: { Error: 'States.Timeout', Cause: 'the step timed out' } },
    });
    expect(result.status).toBe('FAIL');
    const written = await readJson<RunReport>(ctx.runStore, runKeys.report('stage'));
    expect(written.findings.filter((f) => f.code === 'CHECK_FAILED').map((f) => f.message)).toEqual([
      'pipeline step Redundancy failed: States.Timeout: the step timed out (copies were not verified)',
      expect.stringMatching(
        /^pipeline step Report failed: LedgerError: write throttled \(the backups that needed copies could not be marked/,
      ),
    ]);
  });
});
