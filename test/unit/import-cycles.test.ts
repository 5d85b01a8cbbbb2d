import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Relative imports of a file: static, re-exports and `import()` alike (comments stripped first). */
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.[^'"]+)['"]/gm;

/** Each file under `dir` and the files under `dir` it imports. */
async function importGraph(dir: string): Promise<Map<string, string[]>> {
  const root = join(ROOT, dir);
  const graph = new Map<string, string[]>();
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = join(entry.parentPath, entry.name);
    const text = (await readFile(file, 'utf8')).replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
    const deps = [...text.matchAll(IMPORT)]
      .map((m) => resolve(dirname(file), m[1] as string))
      .filter((target) => target.startsWith(root));
    graph.set(relative(root, file), [...new Set(deps.map((d) => relative(root, d)))]);
  }
  return graph;
}

/** Every cycle as the files on it (the strongly connected components of more than one file, or a self-import). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (file: string): void => {
    index.set(file, next);
    low.set(file, next++);
    stack.push(file);
    for (const dep of graph.get(file) ?? []) {
      if (!graph.has(dep)) continue;
      if (!index.has(dep)) {
        visit(dep);
        low.set(file, Math.min(low.get(file) as number, low.get(dep) as number));
      } else if (stack.includes(dep))
        low.set(file, Math.min(low.get(file) as number, index.get(dep) as number));
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string | undefined;
    do {
      member = stack.pop() as string;
      component.push(member);
    } while (member !== file);
    if (component.length > 1 || graph.get(file)?.includes(file)) found.push(component.sort());
  };
  for (const file of graph.keys()) if (!index.has(file)) visit(file);
  return found;
}

describe('issue 11: the CLI untangled', () => {
  it('lib/cli has no import cycle, dynamic import() included', async () => {
    const graph = await importGraph('lib/cli');
    expect(graph.get('main.ts')).toContain('run-command.ts');
    expect(cycles(graph)).toEqual([]);
  });

  it('lib/core has no import cycle: each pipeline stage is its own module, none calls back into another', async () => {
    const graph = await importGraph('lib/core');
    expect(graph.get('stages/record-failure.ts')).toContain('stages/select-restores.ts');
    expect(cycles(graph)).toEqual([]);
  });

  it.each(['lib', 'functions', 'containers'])('%s as a whole has no import cycle', async (dir) => {
    const graph = await importGraph(dir);
    expect(graph.size).toBeGreaterThan(1);
    expect(cycles(graph)).toEqual([]);
  });

  it('the cycle finder sees a cycle made through import()', () => {
    const graph = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts']],
    ]);
    expect(cycles(graph)).toEqual([['a.ts', 'b.ts', 'c.ts']]);
  });

  it('the import pattern reads static, re-export and dynamic imports', () => {
    const text = `import { a } from './a.ts';\nexport { b } from './b.ts';\nconst { c } = await import('./c.ts');\nimport './d.ts';`;
    expect([...text.matchAll(IMPORT)].map((m) => m[1])).toEqual(['./a.ts', './b.ts', './c.ts', './d.ts']);
  });
});
