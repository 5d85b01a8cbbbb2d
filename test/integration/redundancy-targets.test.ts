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
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { StoreError } from '../../lib/core/errors.ts';
import type { RunReport } from '../../lib/core/model.ts';
import { redundancyStage } from '../../lib/core/redundancy.ts';
import { discoverStage, integrityStage, reportStage, type StageContext } from '../../lib/core/stages.ts';
import { gzip, packTar, sha256Hex, sha256sums } from '../support/archives.ts';
import { runCli } from '../support/cli.ts';
import { freshLedger } from '../support/ledger.ts';
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
  it('issue 9.5: a target store that cannot be opened FAILs every backup needing copies with REDUNDANCY_MISSING and the cause; the others keep their verdict', async () => {
    const source = join(dir, 'stage-src');
    await mkdir(source);
    const older = `db-${stamp(30)}.tar.gz`;
    const newer = `db-${stamp(1)}.tar.gz`;
    const web = `web-${stamp(1)}.tar.gz`;
    for (const name of [older, newer, web]) await healthyArchive(source, name);
    const ledger = await freshLedger();
    try {
      const ctx: StageContext = {
        ledger,
        runStore: new FolderStore(join(dir, 'stage-runs')),
        openSource: (url) => new FolderStore(url),
        now: () => new Date(),
      };
      const discovery = await discoverStage(ctx, {
        runId: 'stage',
        trigger: 'cli',
        command: 'comprehensive',
        sources: [source],
        config: { series: { db: { redundancy: { targets: [join(dir, 'stage-copies')] } } } },
      });
      for (const shard of discovery.shards) await integrityStage(ctx, shard);
      const cause = 'no credentials for the copy target';
      await expect(
        redundancyStage(ctx, 'stage', (url) => {
          throw new StoreError(cause, 'credentials', url);
        }),
      ).rejects.toThrow(cause);

      const { report } = await reportStage(ctx, 'stage');
      expect(report.status).toBe('FAIL');
      const byName = Object.fromEntries(report.backups.map((b) => [b.id.slice(source.length + 1), b]));
      expect(byName[web]?.status).toBe('PASS');
      for (const name of [older, newer]) {
        expect(byName[name]?.status, name).toBe('FAIL');
        expect(byName[name]?.findings, name).toEqual([
          expect.objectContaining({
            code: 'REDUNDANCY_MISSING',
            message: `no copy verified: redundancy could not run: StoreError: ${cause}`,
          }),
        ]);
      }
      expect(await exists(join(dir, 'stage-copies'))).toBe(false);
    } finally {
      await ledger.close();
    }
  });
});
