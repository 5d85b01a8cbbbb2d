/** The demo's healthy samples: backups the validator must pass without a finding. */
import { coreutilsLines, gzip, packTar, pgDump, textLines, withRootManifest } from './demo-content.ts';
import { appDatabase, mem0HistoryDatabase } from './demo-databases.ts';
import { DAY, type DemoWriter, demoStamp, HOUR } from './demo-writer.ts';

export async function writeHealthySamples(out: DemoWriter): Promise<void> {
  // 1. db-nightly: two healthy SQLite backups with a SHA256SUMS inside and a sidecar beside.
  for (const [age, customers] of [
    [DAY, 30],
    [2 * HOUR, 32],
  ] as const) {
    const at = out.ago(age);
    const name = `db-nightly-${demoStamp(at)}.tar.gz`;
    const files = [
      { name: 'app.db', content: appDatabase(customers) },
      {
        name: 'meta.json',
        content: `${JSON.stringify({ job: 'db-nightly', database: 'app.db', customers, finishedAt: at.toISOString() }, null, 2)}\n`,
      },
    ];
    await out.archive(name, gzip(await packTar(withRootManifest(files), at)), at, {
      expect: [],
      description: 'healthy SQLite backup: sidecar and in-archive SHA256SUMS match, integrity_check ok',
    });
  }

  // 2. backups/<ts>/: a healthy directory backup holding a Docker volume export.
  {
    const at = out.ago(3 * HOUR);
    const prefix = `backups/${demoStamp(at)}/`;
    const logName = `mem0-${at.toISOString().slice(0, 10)}.log`;
    const volume = await packTar(
      [
        { name: 'data/', type: 'directory' },
        { name: 'data/history.db', content: mem0HistoryDatabase() },
        {
          name: 'data/config.json',
          content: `${JSON.stringify({ version: 'v1.1', vector_store: { provider: 'qdrant', collection: 'mem0' } }, null, 2)}\n`,
        },
        { name: 'data/logs/', type: 'directory' },
        {
          name: `data/logs/${logName}`,
          content: textLines(
            3,
            60,
            (i, pick) =>
              `${at.toISOString()} INFO ${pick(['add', 'search', 'update', 'get'])} memory m-${i % 9}`,
          ),
        },
        { name: 'data/logs/current.log', type: 'symlink', linkname: logName },
      ],
      at,
    );
    const files = [
      { path: 'postgres/dump.sql', content: pgDump({ complete: true, invoices: 120 }) },
      {
        path: 'config/settings.json',
        content: `${JSON.stringify({ service: 'app', replicas: 2, features: { search: true, exports: false } }, null, 2)}\n`,
      },
      { path: 'mem0_storage.tar.gz', content: gzip(volume), binary: true },
    ];
    for (const f of files) await out.write(prefix + f.path, f.content, at);
    await out.write(`${prefix}SHA256SUMS`, coreutilsLines(files), at);
    out.record({
      path: prefix,
      kind: 'directory',
      createdAt: at.toISOString(),
      expect: [],
      description:
        'healthy directory backup: SHA256SUMS (one binary-mode line), a complete pg_dump, JSON settings',
    });
    out.record({
      path: `${prefix}mem0_storage.tar.gz`,
      kind: 'archive',
      createdAt: at.toISOString(),
      expect: [],
      description:
        'healthy Docker volume export (tar czf of /data: SQLite db, logs, a symlink), listed in the SHA256SUMS beside it',
      parent: prefix,
    });
  }
}
