/**
 * Builds a crawl database by hand for fetch and report tests: a crawl, FOD rows in the crawl's
 * output contract (`fods`, `fod_seen`), derivations, inputs and attributes. The end to
 * end tests use a real crawl; these only need the rows.
 */
import { createHash } from 'node:crypto';
import { resolveSettings, type SettingFlags } from '../../src/config/settings.js';
import { openDb, type Db } from '../../src/db/open.js';
import { fetchRunSettings, type FetchRunSettings } from '../../src/fetch/options.js';
import { fodStorePath } from '../../src/nix-formats/store-path.js';
import type { Fod, FodKind } from '../../src/graph/types.js';
import type { HashAlgo } from '../../src/nix-formats/hash.js';

/** What `fodder fetch` with these flags and no config file runs with (from the one resolver of settings). */
export function runSettings(flags: SettingFlags = {}): FetchRunSettings {
  return fetchRunSettings(resolveSettings({ flags }).fetch);
}

/** The binary cache as these tests use it: the defaults, with flat sources published too. */
export const FLAT_CACHE = { ...runSettings().cache, flat: true };

export interface FodSpec {
  name: string;
  /** the URLs as written; resolvedUrls defaults to these */
  urls: string[];
  resolvedUrls?: string[];
  /** the content the declared hash is of (or give hex directly) */
  content?: Buffer | string;
  hex?: string;
  algo?: HashAlgo;
  kind?: FodKind;
  mode?: 'flat' | 'recursive';
  postFetch?: boolean;
}

export interface TestCrawl {
  db: Db;
  crawlId: number;
  addFod(spec: FodSpec): string;
  /** a derivation depending on `inputs`; `attr` names the attribute that evaluates to it */
  addDrv(name: string, inputs: string[], attr?: string): string;
  addEvalError(attr: string, message: string): void;
  /** a new crawl (the next one) that sees the same FODs */
  newCrawl(): number;
  close(): void;
}

let counter = 0;
function storeHash(seed: string): string {
  const chars = '0123456789abcdfghijklmnpqrsvwxyz';
  const h = createHash('sha256')
    .update(seed + String(counter++))
    .digest();
  let s = '';
  for (let i = 0; i < 32; i++) s += chars[h[i] % 32];
  return s;
}

/** The FOD's real output path (as Nix computes it), or a made-up one when the name is not a valid store path name. */
function outPathOf(hash: { algo: HashAlgo; mode: 'flat' | 'recursive'; hex: string }, name: string): string {
  try {
    return fodStorePath(hash, name);
  } catch {
    return `/nix/store/${storeHash(name + 'out')}-${name}`;
  }
}

export function hashHex(algo: HashAlgo, content: Buffer | string): string {
  return createHash(algo).update(content).digest('hex');
}

export function createTestCrawl(file: string, system = 'x86_64-linux', variant = 'default'): TestCrawl {
  const db = openDb(file, { create: true });
  const now = new Date().toISOString();
  const insertCrawl = () =>
    Number(
      db
        .prepare(
          `INSERT INTO crawls (key, nixpkgs, params_json, status, started_at, finished_at)
    VALUES ('test', '/test/nixpkgs', '{}', 'done', ?, ?)`,
        )
        .run(now, now).lastInsertRowid,
    );
  let crawlId = insertCrawl();
  db.prepare(`INSERT INTO crawl_targets (crawl_id, system, variant, config_json, done) VALUES (?, ?, ?, '{}', 1)`).run(crawlId, system, variant);
  const fodPaths: string[] = [];
  const attrs: { path: string; drv: string }[] = [];
  const errors: { path: string; message: string }[] = [];

  const addAttrRow = (crawl: number, path: string, status: string, drv: string | null, error: string | null) => {
    db.prepare(
      `INSERT OR REPLACE INTO attrs (crawl_id, system, variant, path, path_json, parent, depth, status, drv_path, error_kind, error)
      VALUES (?, ?, ?, ?, ?, NULL, 1, ?, ?, ?, ?)`,
    ).run(crawl, system, variant, path, JSON.stringify(path.split('.')), status, drv, error ? 'catchable' : null, error);
  };

  return {
    db,
    get crawlId() {
      return crawlId;
    },
    addFod(spec) {
      const algo = spec.algo ?? 'sha256';
      const hex = spec.hex ?? hashHex(algo, spec.content ?? '');
      const drvPath = `/nix/store/${storeHash(spec.name)}-${spec.name}.drv`;
      const outPath = outPathOf({ algo, mode: spec.mode ?? 'flat', hex }, spec.name);
      const sri = `${algo}-${Buffer.from(hex, 'hex').toString('base64')}`;
      db.prepare(`INSERT INTO drvs (drv_path, name, system, outputs_json, is_fod) VALUES (?, ?, 'builtin', ?, 1)`).run(
        drvPath,
        spec.name,
        JSON.stringify({ out: outPath }),
      );
      db.prepare(
        `INSERT INTO fods (drv_path, out_path, name, kind, hash_algo, hash_mode, hash_hex, hash_sri, urls_json,
        resolved_urls_json, git_json, post_fetch, env_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, '{}')`,
      ).run(
        drvPath,
        outPath,
        spec.name,
        spec.kind ?? 'url',
        algo,
        spec.mode ?? 'flat',
        hex,
        sri,
        JSON.stringify(spec.urls),
        JSON.stringify(spec.resolvedUrls ?? spec.urls),
        spec.postFetch ? 1 : 0,
      );
      db.prepare(`INSERT INTO fod_seen (crawl_id, system, variant, drv_path) VALUES (?, ?, ?, ?)`).run(crawlId, system, variant, drvPath);
      fodPaths.push(drvPath);
      return drvPath;
    },
    addDrv(name, inputs, attr) {
      const drvPath = `/nix/store/${storeHash(name)}-${name}.drv`;
      db.prepare(`INSERT INTO drvs (drv_path, name, system, outputs_json, is_fod, inputs_json) VALUES (?, ?, ?, '{}', 0, ?)`).run(
        drvPath,
        name,
        system,
        JSON.stringify([...new Set(inputs)].sort()),
      );
      if (attr) {
        addAttrRow(crawlId, attr, 'drv', drvPath, null);
        attrs.push({ path: attr, drv: drvPath });
      }
      return drvPath;
    },
    addEvalError(attr, message) {
      addAttrRow(crawlId, attr, 'error', null, message);
      errors.push({ path: attr, message });
    },
    newCrawl() {
      crawlId = insertCrawl();
      for (const d of fodPaths) db.prepare(`INSERT INTO fod_seen (crawl_id, system, variant, drv_path) VALUES (?, ?, ?, ?)`).run(crawlId, system, variant, d);
      for (const a of attrs) addAttrRow(crawlId, a.path, 'drv', a.drv, null);
      for (const e of errors) addAttrRow(crawlId, e.path, 'error', null, e.message);
      return crawlId;
    },
    close() {
      db.close();
    },
  };
}

/** A flat url FOD of a file with this sha256, as a crawl records it (no database needed). */
export function flatFod(name: string, sha256: string): Fod {
  const hash = { algo: 'sha256' as const, mode: 'flat' as const, hex: sha256, sri: `sha256-${Buffer.from(sha256, 'hex').toString('base64')}` };
  return {
    drvPath: `/nix/store/${'1'.repeat(32)}-${name}.drv`,
    outPath: fodStorePath(hash, name),
    name,
    kind: 'url',
    hash,
    urls: [],
    resolvedUrls: [],
    git: null,
    postFetch: false,
  };
}
