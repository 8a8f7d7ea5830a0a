import type { Db } from './open.js';
import type { Fod, FodKind } from '../graph/types.js';
import { dependenciesFirst, drvEntry, type ImportEntry } from '../nix-formats/drv-export.js';
import { FOD_COLUMNS, fodFromRow, type FodRow } from './fod-row.js';

/**
 * Reads the closure of a derivation from the database (schema 3 keeps every .drv text and every
 * input source), dependencies first, ready for `nix-store --import` (see exportArchive); null
 * when the database lacks a part of it (a crawl by an older fodder).
 */
export function createClosureReader(db: Db): (drvPath: string) => ImportEntry[] | null {
  const closure = db.prepare(`
    WITH RECURSIVE c(p) AS (SELECT ? UNION SELECT i.input_drv FROM drv_inputs i JOIN c ON i.drv_path = c.p)
    SELECT c.p drv_path, d.inputs_json, t.text FROM c
      LEFT JOIN drvs d ON d.drv_path = c.p LEFT JOIN drv_texts t ON t.drv_path = c.p`);
  const source = db.prepare(`SELECT nar, references_json FROM store_sources WHERE path = ?`);
  return (drvPath) => {
    const rows = closure.all(drvPath) as { drv_path: string; inputs_json: string | null; text: string | null }[];
    if (rows.some((r) => r.inputs_json === null || r.text === null)) return null;
    const drvs = new Map<string, { entry: ImportEntry; inputs: string[] }>();
    for (const r of rows) drvs.set(r.drv_path, { entry: drvEntry({ drvPath: r.drv_path, text: r.text! }), inputs: JSON.parse(r.inputs_json!) as string[] });
    // input sources, and the sources they refer to
    const sources = new Map<string, ImportEntry>();
    const pending = [...drvs.values()].flatMap((d) => d.entry.references.filter((p) => !drvs.has(p)));
    while (pending.length) {
      const path = pending.pop()!;
      if (sources.has(path)) continue;
      const row = source.get(path) as { nar: Buffer; references_json: string } | undefined;
      if (!row) return null;
      const entry = { path, nar: row.nar, references: JSON.parse(row.references_json) as string[] };
      sources.set(path, entry);
      pending.push(...entry.references);
    }
    // sources refer only to sources, so they all go first
    return [
      ...dependenciesFirst(sources.keys(), (p) => sources.get(p)!.references.filter((r) => r !== p)).map((p) => sources.get(p)!),
      ...dependenciesFirst([drvPath], (p) => drvs.get(p)!.inputs).map((p) => drvs.get(p)!.entry),
    ];
  };
}

/** Reads a FOD's .drv environment on demand (it can be large: not kept for every FOD at once). */
export function createEnvReader(db: Db): (drvPath: string) => Readonly<Record<string, string>> {
  const get = db.prepare(`SELECT env_json FROM fods WHERE drv_path = ?`).pluck();
  return (drvPath) => {
    const text = get.get(drvPath) as string | undefined;
    return text ? (JSON.parse(text) as Record<string, string>) : {};
  };
}

/** The FODs the crawl saw (any system or variant), of the given kinds, in a stable order. */
export function fodsOfCrawl(db: Db, crawlId: number, kinds: readonly FodKind[]): Fod[] {
  const rows = db
    .prepare(
      `
    SELECT ${FOD_COLUMNS} FROM fods f
    WHERE f.drv_path IN (SELECT drv_path FROM fod_seen WHERE crawl_id = ?)
      AND f.kind IN (SELECT value FROM json_each(?))
    ORDER BY f.name, f.drv_path`,
    )
    .all(crawlId, JSON.stringify(kinds)) as FodRow[];
  return rows.map(fodFromRow);
}

/** The drv store directory a crawl wrote its .drv files to (`--store`), or null for the system store. */
export function crawlStoreOf(db: Db, crawlId: number): string | null {
  const text = db.prepare(`SELECT params_json FROM crawls WHERE id = ?`).pluck().get(crawlId) as string | undefined;
  try {
    const store = (JSON.parse(text ?? '{}') as { store?: unknown }).store;
    return typeof store === 'string' && store !== '' ? store : null;
  } catch {
    return null;
  }
}
