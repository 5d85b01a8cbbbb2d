import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { DEFAULT_POLICY, type ProbeConfig } from '../../lib/core/config.ts';
import type { RestoreResult } from '../../lib/core/model.ts';
import { builtinProbeFor, probeMatches, runCustomProbe, shellQuote } from '../../lib/core/restore/probes.ts';
import { restoreBackup } from '../../lib/core/restore/restore.ts';
import { type Arena, archiveBackup, makeArena } from '../support/hostile-archives.ts';
import { corruptSqlitePage, makeSqlite } from '../support/sqlite.ts';

let arena: Arena;
beforeEach(async () => {
  arena = await makeArena('bv-probes-');
});
afterEach(async () => {
  await arena.cleanup();
});

const PG_DUMP = `--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\nCREATE TABLE t (id int);\nCOPY t (id) FROM stdin;\n1\n2\n\\.\n\n--\n-- PostgreSQL database dump complete\n--\n\n`;
const MYSQL_DUMP = `-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n-- Host: localhost    Database: app\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n-- Dump completed on 2025-06-25 11:46:22\n`;

/** A tar whose SHA256SUMS matches its (possibly damaged) files: checksums alone cannot see the damage. */
async function restoreFiles(
  files: Record<string, string | Buffer>,
  probes: ProbeConfig[] = [],
  build?: (dir: string) => void,
): Promise<RestoreResult> {
  const source = path.join(arena.base, 'src');
  await mkdir(source, { recursive: true });
  for (const [name, body] of Object.entries(files)) await writeFile(path.join(source, name), body);
  build?.(source);
  const sums = execFileSync('sh', ['-c', 'sha256sum -- *'], { cwd: source }).toString();
  await writeFile(path.join(source, 'SHA256SUMS'), sums);
  execFileSync('tar', ['-czf', path.join(arena.store, 'app.tar.gz'), '-C', source, '.']);
  return restoreBackup({
    backup: await archiveBackup(arena.store, 'app.tar.gz'),
    store: new FolderStore(arena.store),
    root: arena.root,
    policy: DEFAULT_POLICY,
    probes,
  });
}

function probeFailures(result: RestoreResult): Array<[string | undefined, string]> {
  return result.findings.filter((f) => f.code === 'PROBE_FAILED').map((f) => [f.object, f.message]);
}

describe('built-in probes on restored data', () => {
  it('passes healthy SQLite, pg_dump, mysqldump and JSON files', async () => {
    const result = await restoreFiles(
      { 'pg.sql': PG_DUMP, 'my.sql': MYSQL_DUMP, 'conf.json': '{"a":[1,2,{"b":null}]}' },
      [],
      (dir) => makeSqlite(path.join(dir, 'app.db')),
    );
    expect(result.findings).toEqual([]);
    expect(result.status).toBe('PASS');
  });

  it('fails a SQLite file with a corrupted page although its checksum is consistent', async () => {
    const result = await restoreFiles({}, [], (dir) => {
      const file = path.join(dir, 'app.db');
      makeSqlite(file);
      writeFileSync(file, corruptSqlitePage(readFileSync(file)));
    });
    expect(result.status).toBe('FAIL');
    const failures = probeFailures(result);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.[0]).toBe('app.db');
    expect(failures[0]?.[1]).toMatch(/SQLite/);
  });

  it('fails a truncated pg_dump and a truncated mysqldump', async () => {
    const result = await restoreFiles({
      'pg.sql': PG_DUMP.slice(0, PG_DUMP.indexOf('\\.')),
      'my.sql': MYSQL_DUMP.slice(0, MYSQL_DUMP.indexOf('-- Dump completed')),
    });
    const failures = probeFailures(result);
    expect(failures.map(([object]) => object).sort()).toEqual(['my.sql', 'pg.sql']);
    expect(failures.find(([o]) => o === 'pg.sql')?.[1]).toMatch(/PostgreSQL database dump complete/);
  });

  it('fails truncated JSON, small (parsed) and large (streamed)', async () => {
    const large = JSON.stringify({ rows: Array.from({ length: 200_000 }, (_, i) => ({ i, s: `row ${i}` })) });
    expect(large.length).toBeGreaterThan(4 * 1024 * 1024);
    const result = await restoreFiles({
      'small.json': '{"a": [1, 2',
      'large.json': large.slice(0, -3),
      'large-ok.json': large,
    });
    const failures = probeFailures(result);
    expect(failures.map(([object]) => object).sort()).toEqual(['large.json', 'small.json']);
    expect(failures.find(([o]) => o === 'large.json')?.[1]).toMatch(/before its value is complete/);
  });

  it('recognises files by content, not only by name', () => {
    expect(builtinProbeFor('data/x.bin', Buffer.from('SQLite format 3\0rest', 'latin1'))).toBe('sqlite');
    expect(builtinProbeFor('backup.txt', Buffer.from(PG_DUMP))).toBe('pg-dump');
    expect(builtinProbeFor('all.sql', Buffer.from(MYSQL_DUMP))).toBe('mysql-dump');
    expect(
      builtinProbeFor('notes.sql', Buffer.from('SELECT 1;\n-- PostgreSQL database dump\n'.repeat(1))),
    ).toBe(undefined);
    expect(builtinProbeFor('A.JSON', Buffer.from('{}'))).toBe('json');
  });
});

describe('custom probes', () => {
  it('runs in the sandbox root with {file} quoted, and checks the expected text', async () => {
    const probes: ProbeConfig[] = [
      {
        match: "*it's.db",
        command: 'sqlite3 {file} "PRAGMA integrity_check" && pwd',
        expect: 'ok',
        timeoutSeconds: 30,
      },
      { match: '*.txt', command: 'cat {file}', expect: 'hello', timeoutSeconds: 30 },
    ];
    const result = await restoreFiles({ 'greeting.txt': 'goodbye\n' }, probes, (dir) =>
      makeSqlite(path.join(dir, "it's.db")),
    );
    const failures = probeFailures(result);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.[0]).toBe('greeting.txt');
    expect(failures[0]?.[1]).toMatch(/does not contain "hello"; output: goodbye/);
  });

  it('reports a probe that exits non-zero with its own output', async () => {
    const result = await restoreFiles({ 'a.txt': 'x' }, [
      { match: 'a.txt', command: 'echo "broken index on {file}" >&2; exit 3', timeoutSeconds: 30 },
    ]);
    expect(probeFailures(result)[0]?.[1]).toMatch(/exited with code 3; output: broken index on .*a\.txt/);
  });

  it('kills a probe that runs past its time limit, with its children, and says so', async () => {
    const marker = path.join(arena.base, 'child-survived');
    const probe: ProbeConfig = {
      match: '*',
      command: `(sleep 3; touch ${shellQuote(marker)}) & sleep 30`,
      timeoutSeconds: 1,
    };
    const problem = await runCustomProbe(probe, path.join(arena.canary, 'canary.txt'), arena.canary);
    expect(problem).toMatch(/timed out after 1 s \(it and its child processes were killed\)/);
    await new Promise((resolve) => setTimeout(resolve, 3500));
    expect(existsSync(marker)).toBe(false);
  });

  it('matches a glob without a slash at any depth', () => {
    expect(probeMatches('*.db', 'a/b/c.db')).toBe(true);
    expect(probeMatches('data/*.db', 'data/c.db')).toBe(true);
    expect(probeMatches('data/*.db', 'other/data/c.db')).toBe(false);
    expect(probeMatches('*.db', 'c.dbx')).toBe(false);
  });
});
