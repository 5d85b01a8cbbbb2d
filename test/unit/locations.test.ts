import { mkdir, mkdtemp, realpath, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../lib/core/errors.ts';
import { locationsOverlap, refuseTargetsInSources, resolveLocation } from '../../lib/core/locations.ts';

let dir: string;

beforeAll(async () => {
  dir = await realpath(await mkdtemp(join(tmpdir(), 'bv-locations-')));
  await mkdir(join(dir, 'a', 'b'), { recursive: true });
  await mkdir(join(dir, 'src'));
  await symlink(join(dir, 'src'), join(dir, 'link'));
  await symlink(join(dir, 'a', 'b'), join(dir, 'deep'));
  await symlink(join(dir, 'nowhere'), join(dir, 'dangling'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('resolveLocation', () => {
  it('resolves a relative folder that does not exist yet from its nearest existing ancestor', async () => {
    expect(await resolveLocation('src/copies/x', dir)).toMatchObject({
      kind: 'folder',
      path: join(dir, 'src', 'copies', 'x'),
    });
  });

  it('follows symlinks, and resolves `..` after a link as the kernel does, not lexically', async () => {
    expect(await resolveLocation('link/copies', dir)).toMatchObject({ path: join(dir, 'src', 'copies') });
    // deep -> a/b, so deep/.. is a, not the folder that holds `deep`.
    expect(await resolveLocation('deep/../new', dir)).toMatchObject({ path: join(dir, 'a', 'new') });
    expect(await resolveLocation(`file://${dir}/link`, '/')).toMatchObject({ path: join(dir, 'src') });
  });

  it('refuses a folder through a dangling link, and a scheme no store opens', async () => {
    await expect(resolveLocation('dangling/copies', dir)).rejects.toThrow(/dangling link/);
    await expect(resolveLocation('ftp://host/copies', dir)).rejects.toThrow(UsageError);
  });

  it('reads an s3:// URL as bucket and prefix', async () => {
    expect(await resolveLocation('s3://Bkt//db/copies/', dir)).toMatchObject({
      kind: 's3',
      bucket: 'bkt',
      prefix: 'db/copies',
    });
  });
});

describe('locationsOverlap', () => {
  const s3 = (bucket: string, prefix: string) => ({ kind: 's3' as const, bucket, prefix, url: '' });
  it.each([
    [s3('b', 'db'), s3('b', 'db/copies'), true],
    [s3('b', 'db/copies'), s3('b', 'db'), true],
    [s3('b', ''), s3('b', 'db'), true],
    [s3('b', 'db'), s3('b', 'db'), true],
    [s3('b', 'db'), s3('b', 'db//copies'), true],
    [s3('b', 'db'), s3('b', 'db-copies'), false],
    [s3('b', 'db'), s3('c', 'db'), false],
  ])('s3 %j and %j overlap: %s', (a, b, expected) => {
    expect(locationsOverlap(a, b)).toBe(expected);
  });

  it('compares folders by path segment', () => {
    const folder = (path: string) => ({ kind: 'folder' as const, path, url: path });
    expect(locationsOverlap(folder('/x/src'), folder('/x/src/copies'))).toBe(true);
    expect(locationsOverlap(folder('/x/src/copies'), folder('/x/src'))).toBe(true);
    expect(locationsOverlap(folder('/x/src'), folder('/x/src-copies'))).toBe(false);
    expect(locationsOverlap(folder('/x/src'), s3('x', 'src'))).toBe(false);
  });
});

describe('refuseTargetsInSources', () => {
  it('refuses a target inside a source written relative or through a link, and allows one beside it', async () => {
    const sources = [join(dir, 'src')];
    await expect(refuseTargetsInSources(sources, ['src/copies'], dir)).rejects.toThrow(
      /redundancy target src\/copies .*overlaps the source/,
    );
    await expect(refuseTargetsInSources(sources, [join(dir, 'link', 'copies')], dir)).rejects.toThrow(
      /overlaps the source/,
    );
    await expect(refuseTargetsInSources(['link'], ['src/copies'], dir)).rejects.toThrow(
      /overlaps the source/,
    );
    await expect(refuseTargetsInSources(sources, ['copies', 's3://b/src'], dir)).resolves.toBeUndefined();
  });
});
