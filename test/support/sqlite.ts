import Database from 'better-sqlite3';

/** A SQLite database with a table and an index over 2,000 rows: several b-tree pages to damage. */
export function makeSqlite(file: string): void {
  const db = new Database(file);
  db.exec(
    'CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT); CREATE INDEX items_label ON items(label);',
  );
  const insert = db.prepare('INSERT INTO items (label) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < 2000; i++) insert.run(`item number ${i} ${'x'.repeat(40)}`);
  })();
  db.close();
}

/** Scribbles over page 3's header and cell pointers: the file's checksum stays consistent, SQLite's check fails. */
export function corruptSqlitePage(bytes: Buffer): Buffer {
  return bytes.fill(0xa5, 2 * 4096, 2 * 4096 + 64);
}
