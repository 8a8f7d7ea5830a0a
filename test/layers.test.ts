import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

// The layering rule dependency-cruiser cannot check (docs/architecture.md): every SQL statement is in
// src/db/. Elsewhere a stage calls a function of db/ named for what it answers.

const root = join(import.meta.dirname, '..');

/** SQL in a piece of TypeScript: statements prepared or run on a connection, or SQL text in a string. */
function sqlIn(source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(/\.(prepare|pragma)\(|\bdb\.exec\(/g)) found.push(m[0]);
  // SQL keywords, upper case as this code base writes them, in a template or quoted string
  const statement =
    /\b(SELECT\b[\s\S]*?\bFROM\b|INSERT\s+(OR\s+[A-Z]+\s+)?INTO\b|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\b|CREATE\s+(TABLE|INDEX|VIEW)\b|WITH\s+RECURSIVE\b|PRAGMA\s+\w+|BEGIN\s+IMMEDIATE\b)/;
  for (const m of source.matchAll(/`(?:[^`\\]|\\.)*`|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"/g)) {
    const hit = statement.exec(m[0]);
    if (hit) found.push(hit[0].slice(0, 40));
  }
  return found;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('layers', () => {
  it('finds SQL the way it is written here', () => {
    expect(sqlIn('const n = db.prepare(`SELECT COUNT(*) n FROM attrs WHERE crawl_id = ?`).get(c);')).toHaveLength(2);
    expect(sqlIn("db.exec('PRAGMA journal_mode = WAL')")).toHaveLength(2);
    expect(sqlIn('const q = `\n  WITH RECURSIVE c(p) AS (SELECT ? UNION SELECT 1)`;')).toHaveLength(1);
    expect(sqlIn('s.push(`INSERT OR REPLACE INTO fetch_results VALUES (?)`)')).toHaveLength(1);
    // a regular expression's exec, and prose, are not SQL
    expect(sqlIn('const m = /^(\\d+)$/.exec(line); // select the first line from the file')).toEqual([]);
  });

  it('has SQL only in src/db/', () => {
    const offenders = tsFiles(join(root, 'src'))
      .map((f) => relative(root, f))
      .filter((f) => !f.startsWith('src/db/'))
      .flatMap((f) => sqlIn(readFileSync(join(root, f), 'utf8')).map((s) => `${f}: ${s}`));
    expect(offenders).toEqual([]);
  });
});
