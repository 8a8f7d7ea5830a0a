/**
 * The database layout. Derivations are global (a drvPath never changes meaning); everything
 * observed by a crawl is keyed by crawl id, system and variant.
 */
export const SCHEMA_VERSION = 4;

/**
 * The crawls table (schema 4). `status`: running (a process works on it: pid, boot_id and
 * pid_start name that process, see src/db/owner.ts), done, interrupted (stopped by a signal) or
 * failed (stopped by an error). A `running` crawl whose process is gone is shown as interrupted;
 * either is resumed by the next crawl of the same key. Queries read the latest done crawl.
 */
/** Columns the crawls table gained after schema 4 shipped (added in place by a writer, all nullable). */
export const CRAWL_LATER_COLUMNS: Readonly<Record<string, string>> = { revision: 'TEXT' };

export const crawlsTable = (name: string) => `
CREATE TABLE IF NOT EXISTS ${name} (
  id INTEGER PRIMARY KEY,
  -- hash of the parameters that define the crawl; a re-run with the same key resumes it
  key TEXT NOT NULL,
  nixpkgs TEXT NOT NULL,
  params_json TEXT NOT NULL,
  mirrors_json TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL CHECK (status IN ('running', 'done', 'interrupted', 'failed')),
  started_at TEXT NOT NULL,
  finished_at TEXT,
  duration_ms INTEGER,
  pid INTEGER,                   -- the process that runs (or last ran) it
  host TEXT,                     -- its host name (for messages)
  boot_id TEXT,                  -- the kernel's boot id then (/proc/sys/kernel/random/boot_id)
  pid_start INTEGER,             -- the process's start time, clock ticks after boot (/proc/PID/stat)
  revision TEXT                  -- the package set's git commit (\`service.nixpkgs.git\`), NULL for a plain path
);`;

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

${crawlsTable('crawls')}
CREATE INDEX IF NOT EXISTS crawls_key ON crawls(key, status);

-- one row per (system, variant) a crawl covers
CREATE TABLE IF NOT EXISTS crawl_targets (
  crawl_id INTEGER NOT NULL REFERENCES crawls(id),
  system TEXT NOT NULL,
  variant TEXT NOT NULL,
  config_json TEXT NOT NULL,
  done INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (crawl_id, system, variant)
);

-- every attribute the walk evaluated
CREATE TABLE IF NOT EXISTS attrs (
  crawl_id INTEGER NOT NULL,
  system TEXT NOT NULL,
  variant TEXT NOT NULL,
  path TEXT NOT NULL,            -- dotted, names quoted when needed (a."b.c")
  path_json TEXT NOT NULL,       -- JSON array of names
  parent TEXT,                   -- dotted path of the parent set, NULL for the root
  depth INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('drv', 'set', 'error', 'skipped')),
  drv_path TEXT,
  error_kind TEXT,               -- catchable | uncatchable | timeout | memory | internal
  error TEXT,                    -- Nix's own message
  reason TEXT,                   -- why skipped / why a set was not expanded
  recurse INTEGER NOT NULL DEFAULT 0,  -- set carries recurseForDerivations
  children_json TEXT,            -- set: names to expand (after policy); NULL if not expanded
  sig TEXT,                      -- set: fingerprint of its children, once they are all evaluated
  alias_of TEXT,                 -- set: same value as this earlier path; not crawled again
  PRIMARY KEY (crawl_id, system, variant, path)
);
CREATE INDEX IF NOT EXISTS attrs_drv ON attrs(drv_path);
CREATE INDEX IF NOT EXISTS attrs_status ON attrs(crawl_id, status);
CREATE INDEX IF NOT EXISTS attrs_path ON attrs(path, system, variant);

CREATE TABLE IF NOT EXISTS drvs (
  drv_path TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  system TEXT NOT NULL,
  outputs_json TEXT NOT NULL,
  is_fod INTEGER NOT NULL,
  inputs_json TEXT NOT NULL DEFAULT '[]'   -- JSON array of its input derivations (inputDrvs), sorted
) WITHOUT ROWID;

-- the text of each .drv, exactly as Nix wrote it (schema 3): the crawl's .drv files live only
-- as long as the crawl unless --store keeps them, so this is where later stages find them.
-- A rowid table: the texts are large, and a WITHOUT ROWID table wants small rows.
CREATE TABLE IF NOT EXISTS drv_texts (
  drv_path TEXT PRIMARY KEY,
  text TEXT NOT NULL
);

-- the input sources of those derivations (builder scripts, patches from the package set's tree,
-- builtins.toFile): with drv_texts, what makes a derivation's closure importable into a Nix store
CREATE TABLE IF NOT EXISTS store_sources (
  path TEXT PRIMARY KEY,
  nar BLOB NOT NULL,             -- the NAR of its contents
  references_json TEXT NOT NULL  -- JSON array of the store paths it refers to
);

-- the derivation graph as rows, one per edge
CREATE VIEW IF NOT EXISTS drv_inputs (drv_path, input_drv) AS
  SELECT d.drv_path, j.value FROM drvs d, json_each(d.inputs_json) j;

CREATE TABLE IF NOT EXISTS fods (
  drv_path TEXT PRIMARY KEY,
  out_path TEXT NOT NULL,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  hash_algo TEXT NOT NULL,
  hash_mode TEXT NOT NULL,
  hash_hex TEXT NOT NULL,
  hash_sri TEXT NOT NULL,
  urls_json TEXT NOT NULL,
  resolved_urls_json TEXT NOT NULL,
  git_json TEXT,
  post_fetch INTEGER NOT NULL,
  env_json TEXT NOT NULL         -- the FOD's whole environment for the fetchers that need it; '{}' for a plain url download
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fods_kind ON fods(kind);
CREATE INDEX IF NOT EXISTS fods_out ON fods(out_path);

-- which crawl target saw which FOD (filled when a target finishes)
CREATE TABLE IF NOT EXISTS fod_seen (
  crawl_id INTEGER NOT NULL,
  system TEXT NOT NULL,
  variant TEXT NOT NULL,
  drv_path TEXT NOT NULL,
  PRIMARY KEY (crawl_id, system, variant, drv_path)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fod_seen_drv ON fod_seen(drv_path);
`;

/**
 * Schema 1 kept the graph in a table of its own, one row per edge: 90,000 rows for a
 * 50,000-derivation crawl, each inserted at a random place of its B-tree. Schema 2 keeps each
 * derivation's inputs in its own row (drvs.inputs_json) and offers the same rows as a view. The
 * upgrade runs in one transaction when a writer opens a schema 1 database.
 */
export const MIGRATE_1_TO_2 = `
ALTER TABLE drvs ADD COLUMN inputs_json TEXT NOT NULL DEFAULT '[]';
UPDATE drvs SET inputs_json = (
  SELECT json_group_array(input_drv) FROM (SELECT input_drv FROM drv_inputs i WHERE i.drv_path = drvs.drv_path ORDER BY input_drv))
WHERE drv_path IN (SELECT drv_path FROM drv_inputs);
DROP TABLE drv_inputs;
`;

/**
 * Schema 4 records the process that runs a crawl and allows the statuses `interrupted` and
 * `failed`. SQLite cannot change a CHECK constraint in place, so the table is made again and
 * its rows copied (every column an older table has), in the writer's upgrade transaction.
 * `crawl_targets` refers to crawls by id, which the copy keeps.
 */
export function migrateCrawlsTo4(oldColumns: string[]): string {
  const columns = oldColumns
    .filter((c) => ['id', 'key', 'nixpkgs', 'params_json', 'mirrors_json', 'status', 'started_at', 'finished_at', 'duration_ms'].includes(c))
    .join(', ');
  return `${crawlsTable('crawls_v4')}
INSERT INTO crawls_v4 (${columns}) SELECT ${columns} FROM crawls;
DROP TABLE crawls;
ALTER TABLE crawls_v4 RENAME TO crawls;`;
}
