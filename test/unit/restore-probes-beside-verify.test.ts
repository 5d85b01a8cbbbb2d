import { closeSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SAFE_RESTORE_LIMITS } from '../../lib/core/config.ts';
import type { Finding } from '../../lib/core/findings.ts';
import type { Backup } from '../../lib/core/model.ts';
import { RestoreLimits } from '../../lib/core/restore/limits.ts';
import { verifiedBeforeBuiltinProbes } from '../../lib/core/restore/run-probes.ts';
import { SandboxTree } from '../../lib/core/restore/sandbox-tree.ts';
import { verifyOnDisk } from '../../lib/core/restore/verify-restored.ts';
import { type Arena, makeArena } from '../support/hostile-archives.ts';

let arena: Arena;
beforeEach(async () => {
  arena = await makeArena('bv-probes-beside-');
});
afterEach(async () => {
  await arena.cleanup();
});

async function treeOf(
  files: Record<string, string>,
  links: Record<string, string> = {},
): Promise<SandboxTree> {
  const tree = new SandboxTree(arena.root);
  const limits = new RestoreLimits(SAFE_RESTORE_LIMITS);
  for (const [name, body] of Object.entries(files)) {
    const writer = tree.createFile(name, limits);
    writer.write(Buffer.from(body));
    writer.end();
  }
  for (const [name, target] of Object.entries(links)) tree.makeHardlink(name, target);
  await tree.drain();
  return tree;
}

/** Changes one byte of a restored file on disk, as failing storage would. */
function damage(name: string): void {
  const fd = openSync(path.join(arena.root, name), 'r+');
  writeSync(fd, Buffer.from('#'), 0, 1, 0);
  closeSync(fd);
}

const backup = { id: 'b', kind: 'archive' } as Backup;

describe('issue 13: built-in probes start beside the verification, once what they read is verified', () => {
  it('what must be verified first: every file in a probed file folder, and hard links into it', async () => {
    const tree = await treeOf(
      {
        'db/state.json': '{"ok":true}',
        'db/state.json-notes': 'beside it',
        'db/deeper/other.txt': 'not beside it',
        'logs/app.log': 'GET /\n',
      },
      { 'logs/state-link': 'db/state.json' },
    );
    const first = verifiedBeforeBuiltinProbes(tree);
    const chosen = [...tree.files.values()].filter(first).map((file) => file.path);
    expect(chosen.sort()).toEqual(['db/state.json', 'db/state.json-notes', 'logs/state-link']);
  });

  it('the files chosen first are read back before the probes may start, the rest after; the findings are in tree order', async () => {
    const tree = await treeOf({
      'a/readme.txt': 'first of all\n',
      'db/state.json': '{"ok":true}',
      'z/late.txt': 'read back last\n',
    });
    const findings: Finding[] = [];
    await verifyOnDisk(tree, backup, findings, {
      files: verifiedBeforeBuiltinProbes(tree),
      verified: () => {
        // Damage now is seen only in what is read back after this point.
        damage('db/state.json');
        damage('a/readme.txt');
        damage('z/late.txt');
      },
    });
    expect(findings.map((f) => [f.code, f.object])).toEqual([
      ['RESTORE_MISMATCH', 'a/readme.txt'],
      ['RESTORE_MISMATCH', 'z/late.txt'],
    ]);
  });
});
