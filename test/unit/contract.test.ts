import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FINDING_SEVERITY } from '../../lib/core/findings.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** `| \`CODE\` | severity | meaning |` rows of the finding-codes table in docs/contract.md. */
async function documentedCodes(): Promise<Map<string, string>> {
  const text = await readFile(join(ROOT, 'docs', 'contract.md'), 'utf8');
  const section = text.slice(
    text.indexOf('## Finding codes'),
    text.indexOf('\n## ', text.indexOf('## Finding codes') + 1),
  );
  const codes = new Map<string, string>();
  for (const match of section.matchAll(/^\| `([A-Z_]+)` \| (error|warning)[^|]*\|/gm)) {
    codes.set(match[1] as string, match[2] as string);
  }
  return codes;
}

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(ROOT, dir), { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts')) out.push(join(entry.parentPath, entry.name));
  }
  return out;
}

describe('docs/contract.md', () => {
  it('documents every finding code with its severity, and documents no code the code lacks', async () => {
    const documented = await documentedCodes();
    expect(documented.size).toBeGreaterThan(19);
    expect(Object.fromEntries(documented)).toEqual(FINDING_SEVERITY);
  });

  it('every finding code is emitted somewhere outside its declaration', async () => {
    const files = [
      ...(await sourceFiles('lib')),
      ...(await sourceFiles('functions')),
      ...(await sourceFiles('containers')),
    ].filter((f) => !f.endsWith(join('core', 'findings.ts')) && !f.endsWith(join('core', 'matrix.ts')));
    const text = (await Promise.all(files.map((f) => readFile(f, 'utf8')))).join('\n');
    const unused = Object.keys(FINDING_SEVERITY).filter((code) => !text.includes(`'${code}'`));
    expect(unused).toEqual([]);
  });
});
