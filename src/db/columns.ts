import type { Db } from './open.js';

/**
 * The in-place upgrade of a table that gained columns after it first shipped: each column in
 * `columns` (name -> type; nullable, so old rows need no value) that `table` lacks is added, all
 * in one transaction. Idempotent.
 */
export function addMissingColumns(db: Db, table: string, columns: Readonly<Record<string, string>>): void {
  const have = new Set(db.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(table) as string[]);
  const missing = Object.entries(columns).filter(([name]) => !have.has(name));
  if (missing.length > 0) {
    db.transaction(() => {
      for (const [name, type] of missing) db.exec(`ALTER TABLE ${table} ADD COLUMN ${name} ${type}`);
    }).immediate();
  }
}
