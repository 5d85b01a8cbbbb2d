import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_MEMBER_TABLE_BYTES, MemberTable } from '../../lib/core/inspect/member-table.ts';

const digestOf = (text: string) => createHash('sha256').update(text).digest();

describe('MemberTable', () => {
  it('finds members by path, keeps the last of a repeated path, and lists current members in archive order', () => {
    const table = new MemberTable();
    const long = `${'deep/'.repeat(300_000)}file.txt`; // 1.5 MB: spans the name slabs
    table.add('a.txt', 'file', 3, digestOf('a'));
    table.add('link', 'symlink', 0, MemberTable.EMPTY_DIGEST, 'a.txt');
    table.add(long, 'file', 9, digestOf('long'));
    table.add('été/ü.txt', 'file', 4, digestOf('utf8'));
    table.add('a.txt', 'file', 5, digestOf('a again'));
    expect(table.sha256(table.find('a.txt') as number)).toBe(digestOf('a again').toString('hex'));
    expect(table.size(table.find('a.txt') as number)).toBe(5);
    expect(table.linkTarget(table.find('link') as number)).toBe('a.txt');
    expect(table.type(table.find('link') as number)).toBe('symlink');
    expect(table.linkTarget(table.find('a.txt') as number)).toBeUndefined();
    expect(table.size(table.find(long) as number)).toBe(9);
    expect(table.find(`${long}x`)).toBeUndefined();
    expect(table.find('été/ü.txt')).toBeDefined();
    expect(table.find('missing')).toBeUndefined();
    expect([...table.entries()].map(([path]) => (path === long ? 'LONG' : path))).toEqual([
      'link',
      'LONG',
      'été/ü.txt',
      'a.txt',
    ]);
  });

  it('issue 10 (hostile): 200,000 members are all found again, and the table takes under 90 bytes a member besides its name', () => {
    const table = new MemberTable();
    let nameBytes = 0;
    for (let i = 0; i < 200_000; i++) {
      const name = `f/${i}.txt`;
      nameBytes += name.length;
      table.add(name, 'file', i, digestOf(name));
    }
    for (let i = 0; i < 200_000; i += 997) {
      const slot = table.find(`f/${i}.txt`);
      expect(slot).toBeDefined();
      expect(table.size(slot as number)).toBe(i);
    }
    expect(table.dropped).toBe(0);
    expect(table.bytes - nameBytes).toBeLessThan(200_000 * 90);
  });

  it(`issue 10 (hostile): past its byte budget (${MAX_MEMBER_TABLE_BYTES} by default) the table records no more members and counts them`, () => {
    const table = new MemberTable(1024 * 1024);
    const name = (i: number) => `${'x'.repeat(200)}/${i}`;
    for (let i = 0; i < 20_000; i++) table.add(name(i), 'file', 1, digestOf('x'));
    expect(table.bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(table.recorded).toBeGreaterThan(3000);
    expect(table.recorded + table.dropped).toBe(20_000);
    expect(table.find(name(0))).toBeDefined();
    expect(table.find(name(19_999))).toBeUndefined();
  });
});
