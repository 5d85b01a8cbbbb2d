import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { DEFAULT_POLICY, type ProbeConfig } from '../../lib/core/config.ts';
import type { RestoreResult } from '../../lib/core/model.ts';
import { probeScript } from '../../lib/core/restore/probes.ts';
import { restoreBackup } from '../../lib/core/restore/restore.ts';
import { type Arena, archiveBackup, makeArena, type RawEntry, rawTar } from '../support/hostile-archives.ts';

let arena: Arena;
const savedEnv = { ...process.env };
beforeEach(async () => {
  arena = await makeArena('bv-probe-iso-');
});
afterEach(async () => {
  process.env = { ...savedEnv };
  await arena.cleanup();
});

/** The issue's member name: `cd` goes HOME, then up and into tmp, where `owned` would appear. */
const ISSUE_NAME = 'x$(cd;cd ..;cd tmp;touch owned).txt';
/** From the sandbox root (a probe's working folder), up and into the arena's canary folder. */
const CANARY_NAME = 'y$(cd ..;cd canary;touch owned).txt';

async function restoreWithProbes(entries: RawEntry[], probes: ProbeConfig[]): Promise<RestoreResult> {
  await writeFile(path.join(arena.store, 'app.tar.gz'), zlib.gzipSync(rawTar(entries)));
  return restoreBackup({
    backup: await archiveBackup(arena.store, 'app.tar.gz'),
    store: new FolderStore(arena.store),
    root: arena.root,
    policy: DEFAULT_POLICY,
    probes,
    keep: true,
  });
}

function probeOutputs(result: RestoreResult): Array<[string | undefined, string]> {
  return result.findings
    .filter((f) => f.code === 'PROBE_FAILED')
    .map((f): [string | undefined, string] => [f.object, f.message.replace(/^.*; output: /, '')])
    .sort(([a, x], [b, y]) => `${a}${x}`.localeCompare(`${b}${y}`));
}

describe('custom probes never hand a file name to the shell', () => {
  it('issue 9.15: a member named x$(…touch owned).txt runs nothing, with {file}, "{file}" and \'{file}\' templates', async () => {
    // Where the injection would land were the name parsed: HOME/../tmp, for the HOME the
    // validator had and for a HOME in the sandbox, and the canary folder beside the root.
    const home = path.join(arena.base, 'home', 'user');
    await mkdir(home, { recursive: true });
    await mkdir(path.join(arena.base, 'home', 'tmp'));
    process.env.HOME = home;
    const targets = [
      path.join(arena.base, 'home', 'tmp', 'owned'),
      path.join(arena.root, 'tmp', 'owned'),
      path.join(arena.canary, 'owned'),
      path.join(arena.root, 'owned'),
    ];
    const probes: ProbeConfig[] = ['cat {file}', 'cat "{file}"', "cat '{file}'"].map((command) => ({
      match: '*.txt',
      command,
      // Never printed: each probe fails and its finding shows what it read.
      expect: 'NOT IN ANY FILE',
      timeoutSeconds: 30,
    }));

    const result = await restoreWithProbes(
      [
        { name: 'tmp/', type: 'directory' },
        { name: ISSUE_NAME, body: 'content of the issue member\n' },
        { name: CANARY_NAME, body: 'content of the canary member\n' },
      ],
      probes,
    );

    for (const target of targets) expect(existsSync(target), `${target} must not exist`).toBe(false);
    expect(await readdir(arena.canary)).toEqual(['canary.txt']);
    // Each template ran on the right file and read it.
    expect(probeOutputs(result)).toEqual([
      [ISSUE_NAME, 'content of the issue member'],
      [ISSUE_NAME, 'content of the issue member'],
      [ISSUE_NAME, 'content of the issue member'],
      [CANARY_NAME, 'content of the canary member'],
      [CANARY_NAME, 'content of the canary member'],
      [CANARY_NAME, 'content of the canary member'],
    ]);
    expect(
      result.findings.every((f) => f.code === 'PROBE_FAILED' || f.code === 'NO_REFERENCE_CHECKSUM'),
    ).toBe(true);
  });

  it("issue 9.15: a probe runs without credentials, HOME and TMPDIR in the sandbox, in the restore's process group", async () => {
    process.env.AWS_ACCESS_KEY_ID = 'AKIATESTPROBEENV';
    process.env.AWS_SECRET_ACCESS_KEY = 'secret-the-probe-must-not-see';
    process.env.AWS_SESSION_TOKEN = 'token-the-probe-must-not-see';
    process.env.TASK_TOKEN = 'step-functions-token';
    const report =
      `printf 'HOME=%s TMPDIR=%s AWS=%s SECRETS=%s PGID=%s\\n' "$HOME" "$TMPDIR" ` +
      `"$(env | grep -c '^AWS_')" "$(env | grep -c -e must-not-see -e step-functions-token)" ` +
      `"$(cut -d' ' -f5 /proc/$$/stat)"; exit 1`;
    const result = await restoreWithProbes(
      [{ name: 'data.txt', body: 'data\n' }],
      [{ match: 'data.txt', command: report, timeoutSeconds: 30 }],
    );
    const outputs = probeOutputs(result);
    expect(outputs).toHaveLength(1);
    const match = /^HOME=(\S+) TMPDIR=(\S+) AWS=(\d+) SECRETS=(\d+) PGID=(\d+)$/.exec(outputs[0]?.[1] ?? '');
    expect(match, outputs[0]?.[1]).not.toBeNull();
    const [, home, tmp, aws, secrets, pgid] = match as unknown as string[];
    expect(home?.startsWith(`${arena.root}${path.sep}`)).toBe(true);
    expect(tmp).toBe(home);
    expect(aws).toBe('0');
    expect(secrets).toBe('0');
    const ownStat = readFileSync('/proc/self/stat', 'latin1');
    const ownPgid = ownStat.slice(ownStat.lastIndexOf(')') + 2).split(' ')[2];
    expect(pgid).toBe(ownPgid);
    // The probe's HOME was removed after the probes; only the restored data stays.
    expect(existsSync(home as string)).toBe(false);
    expect(await readdir(arena.root)).toEqual(['data.txt']);
  });

  it('issue 9.15: the path is always the positional argument, quoted for where {file} stands', () => {
    const name = '/s/a b\'c"d$(touch owned)`touch owned2`\\e.txt';
    const run = (template: string) =>
      execFileSync('/bin/sh', ['-c', probeScript(template), 'probe', name], {
        cwd: arena.base,
        encoding: 'utf8',
      });
    expect(run('printf %s {file}')).toBe(name);
    expect(run('printf %s "{file}"')).toBe(name);
    expect(run("printf %s '{file}'")).toBe(name);
    expect(run('printf %s "in [{file}] \\"q\\""')).toBe(`in [${name}] "q"`);
    expect(run("printf %s 'it''s {file}!'")).toBe(`its ${name}!`);
    expect(run('printf %s --db={file}0')).toBe(`--db=${name}0`);
    expect(existsSync(path.join(arena.base, 'owned'))).toBe(false);
    expect(existsSync(path.join(arena.base, 'owned2'))).toBe(false);
  });
});
