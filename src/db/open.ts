import Database from 'better-sqlite3';
import { mkdirSync, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FodderError, ErrorCode } from '../errors.js';
import { MIGRATE_1_TO_2, SCHEMA_SQL, SCHEMA_VERSION, migrateCrawlsTo4 } from './schema.js';
import { reclassifyFods } from './reclassify.js';

export type Db = Database.Database;

export interface OpenDbOptions {
  /** create the file (and its folder) when missing; otherwise a missing file is an error */
  create?: boolean;
  readonly?: boolean;
}

const opened = new Set<string>();

/** Every database file this process opened (a command opens one): what a SQLite error is about. */
export function openedDatabases(): string[] {
  return [...opened];
}

/** SQLite's result codes (the primary part of `SqliteError.code`) as fodder's, with what to do. */
const SQLITE_CODES: Record<string, [code: ErrorCode, text: string]> = {
  SQLITE_CORRUPT: [ErrorCode.DB_CORRUPT, 'is damaged'],
  SQLITE_NOTADB: [ErrorCode.DB_CORRUPT, 'is not a SQLite database (or its first page is damaged)'],
  SQLITE_BUSY: [ErrorCode.DB_BUSY, 'is locked by another process (another fodder crawl or fetch?) past the busy timeout'],
  SQLITE_LOCKED: [ErrorCode.DB_BUSY, 'is locked'],
  SQLITE_READONLY: [ErrorCode.DB_READONLY, 'cannot be written (the file, its folder or the file system is read-only)'],
  SQLITE_FULL: [ErrorCode.DB_FULL, 'cannot grow: no space left on its device'],
  SQLITE_IOERR: [ErrorCode.DB_IO, 'could not be read or written (I/O error)'],
  SQLITE_CANTOPEN: [ErrorCode.DB_IO, 'cannot be opened (its folder missing or unreadable?)'],
  SQLITE_PERM: [ErrorCode.DB_IO, 'cannot be accessed (permission denied)'],
  SQLITE_NOMEM: [ErrorCode.DB_IO, 'could not be read: out of memory'],
  SQLITE_PROTOCOL: [ErrorCode.DB_BUSY, 'is locked (WAL lock protocol)'],
};

/** What to do about each database code, appended to the message. */
const SQLITE_HINTS: Record<string, string> = {
  [ErrorCode.DB_CORRUPT]: 'restore it from a backup, or recover its rows with `sqlite3 <file> .recover`, or move it away and crawl again',
  [ErrorCode.DB_BUSY]: 'wait for the other process to finish, then run the command again',
  [ErrorCode.DB_READONLY]: 'make the file and its folder writable, or pass another --db',
  [ErrorCode.DB_FULL]: 'free space on its device, then run the command again',
  [ErrorCode.DB_IO]: 'check the device and the file',
  [ErrorCode.DB_INVALID]: 'pass the database of a `fodder crawl` with --db',
};

function isSqliteError(err: unknown): err is Error & { code: string } {
  return err instanceof Error && err.name === 'SqliteError' && typeof (err as { code?: unknown }).code === 'string';
}

/**
 * A SQLite error as a FodderError naming the database file and what to do, or null when it is
 * not one fodder expects (a wrong statement: a bug).
 */
export function databaseError(err: unknown, file: string | undefined = openedDatabases().at(-1)): FodderError | null {
  if (!isSqliteError(err)) return null;
  const primary = err.code.replace(/^(SQLITE_[A-Z]+?)(_[A-Z_]+)?$/, '$1');
  let known = SQLITE_CODES[primary] ?? SQLITE_CODES[err.code];
  if (!known && primary === 'SQLITE_ERROR' && /^no such (table|column)/.test(err.message)) {
    known = [ErrorCode.DB_INVALID, 'is not a fodder database this version can read'];
  }
  if (!known) return null;
  const [code, text] = known;
  const name = file ?? 'the database';
  return new FodderError(code, `database ${name} ${text} (SQLite: ${err.message}); ${SQLITE_HINTS[code].replace('<file>', name)}`, {
    file: file ?? null,
    sqlite: err.code,
  });
}

/** True when the database is of this schema already (the schema row says so). */
function schemaIsCurrent(db: Db): boolean {
  try {
    const row = db.prepare(`SELECT value FROM meta WHERE key = 'schema'`).get() as { value: string } | undefined;
    return row?.value === String(SCHEMA_VERSION);
  } catch {
    return false; // a new file, or no meta table yet
  }
}

/** Opens (and migrates) the fodder database with WAL and a busy timeout. */
export function openDb(file: string, options: OpenDbOptions = {}): Db {
  const path = resolve(file);
  opened.add(path);
  if (!existsSync(path)) {
    if (!options.create) {
      throw new FodderError(ErrorCode.DB_EMPTY, `no database at ${path}: run \`fodder crawl\` first (or pass --db FILE)`, { file: path });
    }
    mkdirSync(dirname(path), { recursive: true });
  }
  let db: Db;
  try {
    db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: !options.create });
    db.pragma('busy_timeout = 10000');
    if (!options.readonly) {
      // a new file only (an existing one keeps its page size): in a replay of a 50,000-derivation
      // crawl, inserts took 13% less time with 16 KiB pages than with 4 KiB, and the commit writes
      // a quarter as many WAL frames
      db.pragma('page_size = 16384');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      // fewer, larger checkpoints: a crawl writes tens of thousands of rows in bursts
      db.pragma('wal_autocheckpoint = 8000');
      // keys are store-path hashes, so inserts land all over the B-trees: keep them in memory
      db.pragma('cache_size = -262144');
      db.pragma('foreign_keys = OFF');
      // a database of this schema needs no write to open (another process, a crawl, may hold the
      // write lock for seconds: a command that only reads, or one that is refused, does not wait)
      if (!schemaIsCurrent(db))
        db.transaction(() => {
          const edges = db.prepare(`SELECT type FROM sqlite_master WHERE name = 'drv_inputs'`).get() as { type: string } | undefined;
          if (edges?.type === 'table') db.exec(MIGRATE_1_TO_2);
          const crawlColumns = db.prepare(`SELECT name FROM pragma_table_info('crawls')`).pluck().all() as string[];
          if (crawlColumns.length > 0 && !crawlColumns.includes('pid')) db.exec(migrateCrawlsTo4(crawlColumns));
          db.exec(SCHEMA_SQL);
          const row = db.prepare(`SELECT value FROM meta WHERE key = 'schema'`).get() as { value: string } | undefined;
          if (row?.value !== String(SCHEMA_VERSION)) {
            db.prepare(`INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)`).run(String(SCHEMA_VERSION));
          }
        }).immediate();
      reclassifyFods(db);
    } else {
      db.prepare('SELECT 1 FROM crawls LIMIT 1').get();
    }
  } catch (err) {
    if (err instanceof FodderError) throw err;
    const known = databaseError(err, path);
    if (known && known.code !== ErrorCode.DB_CORRUPT) throw known;
    throw new FodderError(
      known?.code ?? ErrorCode.DB_INVALID,
      `cannot open database ${path}: ${(err as Error).message}` + (known ? `; ${SQLITE_HINTS[known.code]}` : ''),
      { file: path },
    );
  }
  return db;
}
