/** The demo's damaged and stale samples: each one made to show the findings it records. */
import zlib from 'node:zlib';
import { BackupValidatorError } from '../core/errors.ts';
import {
  coreutilsLines,
  fakeJpeg,
  fakePng,
  gzip,
  packTar,
  pgDump,
  textLines,
  withRootManifest,
} from './demo-content.ts';
import { corruptInventoryDatabase } from './demo-databases.ts';
import { DAY, type DemoWriter, demoStamp, HOUR } from './demo-writer.ts';

/** Flips one bit of the deflate data, choosing one that zlib reports as damage, not as a short stream. */
function flipOneBit(archive: Buffer): Buffer {
  const GZIP_HEADER = 10;
  const GZIP_TRAILER = 8;
  for (let at = Math.floor(archive.length / 2); at < archive.length - GZIP_TRAILER; at++) {
    if (at < GZIP_HEADER) continue;
    const damaged = Buffer.from(archive);
    damaged[at] = (damaged[at] as number) ^ 0x10;
    try {
      zlib.gunzipSync(damaged);
    } catch (error) {
      if (!/unexpected end of file/i.test((error as Error).message)) return damaged;
    }
  }
  throw new BackupValidatorError('demo: no single bit flip corrupted the sample archive');
}

function cutShort(archive: Buffer): Buffer {
  const cut = archive.subarray(0, Math.floor(archive.length / 2));
  try {
    zlib.gunzipSync(cut);
  } catch (error) {
    if (/unexpected end of file/i.test((error as Error).message)) return Buffer.from(cut);
  }
  throw new BackupValidatorError('demo: cutting the sample archive did not make it read as truncated');
}

export async function writeDamagedSamples(out: DemoWriter): Promise<void> {
  // 3. backups-media/<ts>/: a manifest that no longer matches the folder.
  {
    const at = out.ago(4 * HOUR);
    const prefix = `backups-media/${demoStamp(at)}/`;
    const beach = fakeJpeg('beach', 6000);
    const teamAsBackedUp = fakeJpeg('team', 5000);
    const teamNow = fakeJpeg('team-edited', 5000);
    const harbour = fakeJpeg('harbour', 4000);
    const albums = `${JSON.stringify({ albums: [{ name: 'Summer', photos: ['beach.jpg', 'harbour.jpg', 'team.jpg'] }] }, null, 2)}\n`;
    await out.write(`${prefix}albums.json`, albums, at);
    await out.write(`${prefix}photos/beach.jpg`, beach, at);
    await out.write(`${prefix}photos/team.jpg`, teamNow, at);
    await out.write(`${prefix}photos/IMG_0042.jpg`, fakeJpeg('img-0042', 3000), at);
    await out.write(
      `${prefix}SHA256SUMS`,
      coreutilsLines([
        { path: 'albums.json', content: albums },
        { path: 'photos/beach.jpg', content: beach, binary: true },
        { path: 'photos/harbour.jpg', content: harbour, binary: true },
        { path: 'photos/team.jpg', content: teamAsBackedUp, binary: true },
      ]),
      at,
    );
    out.record({
      path: prefix,
      kind: 'directory',
      createdAt: at.toISOString(),
      expect: ['MISSING_OBJECT', 'CHECKSUM_MISMATCH', 'UNLISTED_OBJECT'],
      description:
        'SHA256SUMS lists photos/harbour.jpg (absent), photos/team.jpg was changed afterwards, photos/IMG_0042.jpg is not listed',
    });
  }

  // 4. web-assets: one bit flipped in the deflate stream; the sidecar was taken of the damaged bytes.
  {
    const at = out.ago(HOUR);
    const name = `web-assets-${demoStamp(at)}.tar.gz`;
    const words = ['const', 'render', 'state', 'props', 'return', 'await', 'fetch', 'items', 'map', 'filter'];
    const tar = await packTar(
      [
        {
          name: 'index.html',
          content:
            '<!doctype html>\n<html><head><link rel="stylesheet" href="assets/style.css"></head><body><script src="assets/app.js"></script></body></html>\n',
        },
        {
          name: 'assets/app.js',
          content: textLines(
            11,
            400,
            (i, pick) => `function f${i}(${pick(words)}) { ${pick(words)} ${pick(words)}(${i}); }`,
          ),
        },
        {
          name: 'assets/style.css',
          content: textLines(
            12,
            200,
            (i, pick) =>
              `.c${i} { margin: ${i % 17}px; color: #${(i * 4099).toString(16).padStart(6, '0').slice(0, 6)}; } /* ${pick(words)} */`,
          ),
        },
        { name: 'assets/logo.png', content: fakePng('logo', 3000) },
      ],
      at,
    );
    await out.archive(name, flipOneBit(gzip(tar)), at, {
      expect: ['ARCHIVE_CORRUPT'],
      description:
        'one bit flipped in the deflate stream before the job hashed it: the sidecar matches, only reading the archive finds it',
    });
  }

  // 5. logs: cut short in the middle.
  {
    const at = out.ago(HOUR);
    const name = `logs-${demoStamp(at)}.tgz`;
    const levels = ['INFO', 'INFO', 'INFO', 'WARN', 'DEBUG', 'ERROR'];
    const tar = await packTar(
      ['api', 'worker', 'scheduler'].map((service, s) => ({
        name: `var/log/${service}.log`,
        content: textLines(
          20 + s,
          500,
          (i, pick) =>
            `2025-06-25T${String(i % 24).padStart(2, '0')}:00:${String(i % 60).padStart(2, '0')}Z ${pick(levels)} ${service} request ${i * 31} handled in ${(i * 7) % 900} ms`,
        ),
      })),
      at,
    );
    await out.archive(name, cutShort(gzip(tar)), at, {
      expect: ['ARCHIVE_TRUNCATED'],
      description:
        'cut off halfway (the disk filled during the upload); the sidecar was taken of what was written',
    });
  }

  // 6. empty-job: the job reported success but wrote an empty archive.
  {
    const at = out.ago(HOUR);
    const name = `empty-job-${demoStamp(at)}.tar.gz`;
    await out.archive(name, gzip(await packTar([], at)), at, {
      expect: ['EMPTY_BACKUP'],
      description: 'a valid gzip of an empty tar: the job reported success while writing empty archives',
    });
  }

  // 7. crm: the sidecar records other bytes than the ones stored.
  {
    const at = out.ago(HOUR);
    const name = `crm-${demoStamp(at)}.tar.gz`;
    const contacts = (rows: number) =>
      `id,name,email\n${textLines(7, rows, (i, pick) => `${i + 1},${pick(['Ada', 'Grace', 'Linus', 'Barbara', 'Ken'])} ${i},contact${i}@example.com`)}`;
    const crm = async (rows: number) =>
      gzip(
        await packTar(
          [
            { name: 'crm/contacts.csv', content: contacts(rows) },
            { name: 'crm/deals.json', content: `${JSON.stringify({ open: 12, won: 4, lost: 2 })}\n` },
          ],
          at,
        ),
      );
    await out.archive(name, await crm(80), at, {
      expect: ['CHECKSUM_MISMATCH'],
      description:
        'a readable archive whose bytes differ from its .sha256 sidecar (replaced or altered after the backup)',
      sidecar: { of: await crm(81) },
    });
  }

  // 8. reports: healthy, but the newest of its series is ten days old.
  {
    const at = out.ago(10 * DAY);
    const name = `reports-${demoStamp(at)}.tar.gz`;
    const tar = await packTar(
      [
        {
          name: 'reports/sales-q2.csv',
          content: `region,total\n${textLines(9, 40, (i, pick) => `${pick(['north', 'south', 'east', 'west'])}-${i},${(i * 1237) % 99_999}`)}`,
        },
        { name: 'reports/summary.json', content: `${JSON.stringify({ quarter: '2025-Q2', regions: 4 })}\n` },
      ],
      at,
    );
    await out.archive(name, gzip(tar), at, {
      expect: ['RPO_EXCEEDED'],
      description:
        'intact, but the newest backup of series "reports" is 10 days old (RPO 24 h): the job stopped running',
      sidecar: { bare: true },
    });
  }

  // 9. inventory-db: checksums all agree, but the database inside is damaged.
  {
    const at = out.ago(HOUR);
    const name = `inventory-db-${demoStamp(at)}.tar.gz`;
    const files = [{ name: 'inventory.db', content: corruptInventoryDatabase() }];
    await out.archive(name, gzip(await packTar(withRootManifest(files), at)), at, {
      expect: ['PROBE_FAILED'],
      description:
        'every checksum matches, but the SQLite database was already damaged when backed up: integrity_check fails',
    });
  }

  // 10. billing-dump: a pg_dump that never finished.
  {
    const at = out.ago(HOUR);
    const name = `billing-dump-${demoStamp(at)}.sql.gz`;
    await out.archive(name, gzip(pgDump({ complete: false, invoices: 400 })), at, {
      expect: ['PROBE_FAILED'],
      description:
        'a valid gzip of a pg_dump that stops mid-COPY, without "-- PostgreSQL database dump complete"',
    });
  }

  // 11. uploads: a hostile archive that would write outside the restore folder.
  {
    const at = out.ago(HOUR);
    const name = `uploads-${demoStamp(at)}.tar.gz`;
    const tar = await packTar(
      [
        { name: 'uploads/', type: 'directory' },
        { name: 'uploads/avatar-1.png', content: fakePng('avatar-1', 2000) },
        { name: '../escape.txt', content: 'this file would land outside the restore folder\n' },
      ],
      at,
    );
    await out.archive(name, gzip(tar), at, {
      expect: ['UNSAFE_PATH'],
      description:
        'a hostile archive with a "../escape.txt" entry: the restore refuses to write outside its folder',
    });
  }
}
