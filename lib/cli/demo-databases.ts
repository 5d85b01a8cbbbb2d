/** The demo's SQLite images: healthy application databases and one damaged so only integrity_check sees it. */
import Database from 'better-sqlite3';
import { BackupValidatorError } from '../core/errors.ts';

function sqliteImage(build: (db: Database.Database) => void): Buffer {
  const db = new Database(':memory:');
  try {
    build(db);
    return db.serialize();
  } finally {
    db.close();
  }
}

function integrityCheckOf(image: Buffer): string {
  const db = new Database(image);
  try {
    const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
    return rows.map((r) => r.integrity_check).join('; ');
  } finally {
    db.close();
  }
}

export function appDatabase(customers: number): Buffer {
  return sqliteImage((db) => {
    db.exec(`
      CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
      CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), total_cents INTEGER NOT NULL, placed_at TEXT NOT NULL);
      CREATE INDEX orders_by_customer ON orders(customer_id);
      CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    `);
    const addCustomer = db.prepare('INSERT INTO customers (id, name, email, created_at) VALUES (?, ?, ?, ?)');
    const addOrder = db.prepare('INSERT INTO orders (customer_id, total_cents, placed_at) VALUES (?, ?, ?)');
    db.transaction(() => {
      for (let i = 1; i <= customers; i++) {
        addCustomer.run(
          i,
          `Customer ${i}`,
          `customer${i}@example.com`,
          `2025-01-${String((i % 28) + 1).padStart(2, '0')}`,
        );
        for (let j = 0; j < 3; j++)
          addOrder.run(
            i,
            ((i * 7919 + j * 104729) % 50_000) + 100,
            `2025-05-${String(j + 1).padStart(2, '0')}`,
          );
      }
      db.prepare('INSERT INTO settings (key, value) VALUES (?, ?)').run('currency', 'EUR');
      db.prepare('INSERT INTO settings (key, value) VALUES (?, ?)').run('schema_version', '7');
    })();
  });
}

export function mem0HistoryDatabase(): Buffer {
  return sqliteImage((db) => {
    db.exec(`
      CREATE TABLE history (id TEXT PRIMARY KEY, memory_id TEXT NOT NULL, old_memory TEXT, new_memory TEXT,
        event TEXT NOT NULL, created_at TEXT NOT NULL, is_deleted INTEGER NOT NULL DEFAULT 0);
      CREATE INDEX history_by_memory ON history(memory_id);
    `);
    const add = db.prepare(
      'INSERT INTO history (id, memory_id, old_memory, new_memory, event, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    db.transaction(() => {
      for (let i = 1; i <= 25; i++) {
        add.run(
          `h-${i}`,
          `m-${i % 9}`,
          i > 9 ? `fact ${i - 9}` : null,
          `fact ${i}`,
          i > 9 ? 'UPDATE' : 'ADD',
          `2025-06-${String((i % 28) + 1).padStart(2, '0')}T10:00:00Z`,
        );
      }
    })();
  });
}

function readVarint(page: Buffer, at: number): { value: number; length: number } {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    const byte = page[at + i] as number;
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) return { value, length: i + 1 };
  }
  return { value: value * 256 + (page[at + 8] as number), length: 9 };
}

/**
 * An inventory database whose `items` b-tree page holds one row id out of order: the file
 * still opens and most queries work, but `PRAGMA integrity_check` (and quick_check) report it.
 */
export function corruptInventoryDatabase(): Buffer {
  const image = sqliteImage((db) => {
    db.exec(`
      CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT NOT NULL, name TEXT NOT NULL, quantity INTEGER NOT NULL);
      CREATE UNIQUE INDEX items_by_sku ON items(sku);
    `);
    const add = db.prepare('INSERT INTO items (id, sku, name, quantity) VALUES (?, ?, ?, ?)');
    db.transaction(() => {
      for (let i = 1; i <= 40; i++)
        add.run(i, `SKU-${String(i).padStart(5, '0')}`, `Item ${i}`, (i * 37) % 500);
    })();
  });
  const rootPage = (() => {
    const db = new Database(image);
    try {
      return (
        db.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 'items'").get() as { rootpage: number }
      ).rootpage;
    } finally {
      db.close();
    }
  })();
  const rawPageSize = image.readUInt16BE(16);
  const pageSize = rawPageSize === 1 ? 65_536 : rawPageSize;
  const page = (rootPage - 1) * pageSize;
  const header = page + (rootPage === 1 ? 100 : 0);
  const LEAF_TABLE_PAGE = 0x0d;
  if (image[header] !== LEAF_TABLE_PAGE) {
    throw new BackupValidatorError(`demo: the items table of the sample database is not a single leaf page`);
  }
  const cells = image.readUInt16BE(header + 3);
  const cell = page + image.readUInt16BE(header + 8 + 2 * Math.floor(cells / 2));
  const payloadSize = readVarint(image, cell);
  const rowid = readVarint(image, cell + payloadSize.length);
  if (rowid.length !== 1)
    throw new BackupValidatorError('demo: unexpected row id encoding in the sample database');
  // 127 is larger than every later row id in the page: the row ids are no longer in order.
  image[cell + payloadSize.length] = 0x7f;
  const verdict = integrityCheckOf(image);
  if (verdict === 'ok')
    throw new BackupValidatorError('demo: the damaged sample database still passes integrity_check');
  return image;
}
