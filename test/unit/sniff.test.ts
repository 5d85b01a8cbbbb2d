import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  archiveByPattern,
  looksLikeTar,
  matchesArchivePattern,
  readHead,
  sniffArchiveFormat,
} from '../../lib/core/inspect/index.ts';
import { gzip, packTar, sampleBytes } from '../support/archives.ts';

describe('issue 9.9: archives recognised by their first bytes', () => {
  it('issue 9.9: gzip, zstd and tar (ustar magic or a valid v7 header checksum) are recognised; other bytes are not', async () => {
    const tar = await packTar([{ name: 'a.txt', content: 'alpha\n' }]);
    expect(sniffArchiveFormat(tar, 'x.snapshot')).toEqual({ compression: 'none', tar: true, stem: 'x' });
    expect(sniffArchiveFormat(gzip(tar), 'x.snapshot')).toEqual({
      compression: 'gzip',
      tar: true,
      stem: 'x',
    });
    expect(sniffArchiveFormat(gzip(Buffer.from('plain text')), 'dump')).toEqual({
      compression: 'gzip',
      tar: false,
      stem: 'dump',
    });
    expect(sniffArchiveFormat(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]), 'v.bin')?.compression).toBe(
      'zstd',
    );

    const v7 = Buffer.from(tar.subarray(0, 512));
    v7.fill(0, 257, 265);
    expect(looksLikeTar(v7)).toBe(false);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (v7[i] as number);
    v7.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    expect(looksLikeTar(v7)).toBe(true);

    expect(sniffArchiveFormat(sampleBytes(4096), 'random.bin')).toBeUndefined();
    expect(sniffArchiveFormat(Buffer.alloc(1024), 'zeros.bin')).toBeUndefined();
    expect(sniffArchiveFormat(Buffer.alloc(0), 'empty')).toBeUndefined();
  });

  it('issue 9.9: reading the head gives back the whole stream, and a read error names the bytes read', async () => {
    const body = sampleBytes(200_000);
    const chunks = [body.subarray(0, 1000), body.subarray(1000, 70_000), body.subarray(70_000)];
    const { head, stream } = await readHead(Readable.from(chunks));
    expect(head.length).toBeGreaterThanOrEqual(64 * 1024);
    const all: Buffer[] = [];
    for await (const chunk of stream) all.push(chunk as Buffer);
    expect(Buffer.concat(all).equals(body)).toBe(true);

    const failing = Readable.from(
      (async function* () {
        yield Buffer.alloc(11);
        throw new Error('connection reset');
      })(),
    );
    await expect(readHead(failing)).rejects.toMatchObject({ message: 'connection reset', bytesRead: 11 });
  });

  it('issue 9.9: archives.patterns match names, or whole keys when they hold a slash', () => {
    expect(matchesArchivePattern('qdrant/qdrant-2025-06-25.snapshot', ['*.snapshot'])).toBe(true);
    expect(matchesArchivePattern('qdrant/notes.txt', ['*.snapshot'])).toBe(false);
    expect(matchesArchivePattern('vec/a.bin', ['vec/*.bin'])).toBe(true);
    expect(matchesArchivePattern('other/a.bin', ['vec/*.bin'])).toBe(false);
    expect(archiveByPattern('q/qdrant-2025-06-25.snapshot', ['*.snapshot'])?.stem).toBe('qdrant-2025-06-25');
    expect(archiveByPattern('q/x.snapshot', [])).toBeUndefined();
  });
});
