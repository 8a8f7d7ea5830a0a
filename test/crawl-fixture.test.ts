import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURE, ROOT, fodder, tempDir } from './helpers/cli.js';
import { closureDrvs, showDerivations, storeHolding } from './helpers/nix.js';
import { openDb, type Db } from '../src/db/open.js';
import { sourcesOf } from '../src/query/sources.js';
import { formatAttrPath } from '../src/eval/attr-path.js';

interface Expected {
  uncatchable: { path: string[]; messageIncludes: string | string[] }[];
  catchable: { path: string[]; why: string; allowedIn: string | null }[];
  systemOnly: { path: string[]; fodName: string; systems: string[] }[];
  configOnly: { path: string[]; fodName: string; config: Record<string, unknown> }[];
  stringContextOnly: { path: string[]; fodName: string }[];
  nonRecursedSets: string[][];
  aliasedSets: { path: string[]; sameAs: string[] }[];
  traps: string[][];
  hashSpellings: { path: string[]; spelling: string }[];
}
const expected = JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'expected.json'), 'utf8')) as Expected;

const SYSTEMS = ['x86_64-linux', 'aarch64-linux', 'x86_64-darwin'];
let dir: string, dbFile: string, store: string, db: Db;
let stderrOfCrawl = '';
let summary: { crawl: number; attrs: { total: number; drv: number; error: number }; drvs: number; fods: number };

/** The variants of the test crawl: nixpkgs' two defaults plus one with the config flag the fixture knows. */
function configYaml(): string {
  const flags = Object.assign({}, ...expected.configOnly.map((c) => c.config)) as Record<string, unknown>;
  return [
    'variants:',
    '  default: {}',
    '  permissive:',
    '    config: { allowUnfree: true, allowBroken: true, allowUnsupportedSystem: true }',
    '    nix: "{ allowInsecurePredicate = _: true; }"',
    '  flagged:',
    `    config: ${JSON.stringify(flags)}`,
    '',
  ].join('\n');
}

beforeAll(async () => {
  dir = tempDir();
  dbFile = join(dir, 'fodder.db');
  store = join(dir, 'store');
  writeFileSync(join(dir, 'fodder.yaml'), configYaml());
  const r = await fodder([
    'crawl',
    '--config',
    join(dir, 'fodder.yaml'),
    '--nixpkgs',
    FIXTURE,
    '--db',
    dbFile,
    '--store',
    store,
    '--workers',
    '2',
    '--json',
    ...SYSTEMS.flatMap((s) => ['--system', s]),
  ]);
  expect(r.code, r.stderr).toBe(0);
  summary = JSON.parse(r.stdout);
  stderrOfCrawl = r.stderr;
  db = openDb(dbFile, { readonly: true });
}, 300_000);

/** A pattern matching any of Nix's wordings of a message (2.8 and 2.26 word some differently). */
function wordings(m: string | string[]): RegExp {
  return new RegExp((typeof m === 'string' ? [m] : m).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'));
}

function rowsWhere(sql: string, ...params: unknown[]) {
  return db.prepare(sql).all(...params) as Record<string, string>[];
}

function sourceNames(path: string[], system: string, variant: string): string[] | null {
  try {
    return sourcesOf(db, formatAttrPath(path), { system, variant }).sources.map((s) => s.name);
  } catch {
    return null;
  }
}

describe('crawling the test package set', () => {
  it('finds, for every derivation attribute, exactly the FODs nix-store -qR and the .drv files say', async () => {
    const attrs = rowsWhere(`SELECT path, system, variant, drv_path FROM attrs WHERE status = 'drv' AND system IN ('x86_64-linux', 'aarch64-linux')`);
    expect(attrs.length).toBeGreaterThan(100);
    const byDrv = new Map<string, string[]>();
    for (const a of attrs) byDrv.set(a.drv_path, []);
    for (const drv of byDrv.keys()) byDrv.set(drv, await closureDrvs(storeHolding(store, drv, 2), drv));
    const all = [...new Set([...byDrv.values()].flat())];
    const shown: Record<string, Awaited<ReturnType<typeof showDerivations>>[string]> = {};
    for (const s of [store, `${store}-w1`]) {
      const here = all.filter(
        (d) =>
          !shown[d] &&
          (() => {
            try {
              return storeHolding(store, d, 2) === s;
            } catch {
              return false;
            }
          })(),
      );
      Object.assign(shown, await showDerivations(s, here));
    }
    let compared = 0;
    for (const a of attrs) {
      const truth = byDrv
        .get(a.drv_path)!
        .filter((d) => shown[d].outputs.out?.hash)
        .sort();
      const ours = sourcesOf(db, a.path, { system: a.system, variant: a.variant });
      expect(ours.drvPath).toBe(a.drv_path);
      expect(ours.sources.map((s) => s.drvPath).sort(), `${a.path} on ${a.system}/${a.variant}`).toEqual(truth);
      for (const s of ours.sources) {
        const out = shown[s.drvPath].outputs.out;
        expect(s.outPath).toBe(out.path);
        expect(`${s.hash.mode === 'recursive' ? 'r:' : ''}${s.hash.algo}`).toBe(out.hashAlgo);
        expect(s.hash.hex).toBe(out.hash);
      }
      compared++;
    }
    expect(compared).toBe(attrs.length);
  });

  it('records, per target, the FODs the shards walked, which are the closure of its derivation attributes', () => {
    // the workers report each shard's closure; the definition is a recursive query over the graph
    const byQuery = rowsWhere(
      `
      WITH RECURSIVE c(system, variant, p) AS (
        SELECT system, variant, drv_path FROM attrs WHERE crawl_id = ? AND status = 'drv'
        UNION SELECT c.system, c.variant, i.input_drv FROM drv_inputs i JOIN c ON i.drv_path = c.p)
      SELECT DISTINCT c.system, c.variant, c.p drv_path FROM c JOIN fods f ON f.drv_path = c.p
      ORDER BY 1, 2, 3`,
      summary.crawl,
    );
    const recorded = rowsWhere(`SELECT system, variant, drv_path FROM fod_seen WHERE crawl_id = ? ORDER BY 1, 2, 3`, summary.crawl);
    expect(byQuery.length).toBeGreaterThan(100);
    expect(recorded).toEqual(byQuery);
    const closure = rowsWhere(
      `
      WITH RECURSIVE c(p) AS (
        SELECT drv_path FROM attrs WHERE crawl_id = ? AND status = 'drv'
        UNION SELECT i.input_drv FROM drv_inputs i JOIN c ON i.drv_path = c.p)
      SELECT COUNT(*) n FROM c`,
      summary.crawl,
    )[0].n;
    expect(summary.drvs).toBe(closure);
    // into a fresh database, the progress counts (new rows) end at the summary's figures
    const last = stderrOfCrawl
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('crawl: targets'))
      .at(-1);
    expect(last).toContain(`drvs ${summary.drvs}  fods ${summary.fods}`);
  });

  it('sees system-only sources exactly on their systems', () => {
    expect(expected.systemOnly.length).toBeGreaterThan(0);
    for (const e of expected.systemOnly) {
      for (const system of SYSTEMS) {
        const names = sourceNames(e.path, system, 'permissive');
        const has = names?.includes(e.fodName) ?? false;
        expect(has, `${formatAttrPath(e.path)} / ${e.fodName} on ${system}`).toBe(e.systems.includes(system));
      }
    }
  });

  it('sees config-only sources only in the variant that sets the flag', () => {
    expect(expected.configOnly.length).toBeGreaterThan(0);
    for (const e of expected.configOnly) {
      expect(sourceNames(e.path, 'x86_64-linux', 'flagged')).toContain(e.fodName);
      expect(sourceNames(e.path, 'x86_64-linux', 'default') ?? []).not.toContain(e.fodName);
    }
  });

  it('finds a FOD reached only through string context', () => {
    expect(expected.stringContextOnly.length).toBeGreaterThan(0);
    for (const e of expected.stringContextOnly) expect(sourceNames(e.path, 'x86_64-linux', 'default')).toContain(e.fodName);
  });

  it("records every uncatchable attribute with Nix's message and crawls everything after it", () => {
    for (const e of expected.uncatchable) {
      const rows = rowsWhere(`SELECT system, variant, status, error_kind, error FROM attrs WHERE path = ?`, formatAttrPath(e.path));
      expect(rows.length, formatAttrPath(e.path)).toBe(SYSTEMS.length * 3);
      for (const r of rows) {
        expect(r).toMatchObject({ status: 'error', error_kind: 'uncatchable' });
        expect(r.error).toMatch(wordings(e.messageIncludes));
      }
      // every later sibling (names are walked in sorted order) was still evaluated
      const parent = formatAttrPath(e.path.slice(0, -1));
      const later = rowsWhere(
        `SELECT path FROM attrs WHERE ${e.path.length === 1 ? "parent = ''" : 'parent = ?'} AND path > ? AND system = 'x86_64-linux' AND variant = 'default'`,
        ...(e.path.length === 1 ? [] : [parent]),
        formatAttrPath(e.path),
      );
      expect(later.length, `siblings after ${formatAttrPath(e.path)}`).toBeGreaterThan(0);
    }
  });

  it('records caught failures with their message, and lets the permissive variant through', () => {
    expect(expected.catchable.length).toBeGreaterThan(0);
    for (const e of expected.catchable) {
      const get = (variant: string) =>
        rowsWhere(`SELECT status, error_kind, error FROM attrs WHERE path = ? AND system = 'x86_64-linux' AND variant = ?`, formatAttrPath(e.path), variant)[0];
      const def = get('default');
      expect(def, formatAttrPath(e.path)).toMatchObject({ status: 'error', error_kind: 'catchable' });
      expect(def.error).toMatch(/error/);
      if (e.allowedIn === 'permissive') expect(get('permissive').status, formatAttrPath(e.path)).toBe('drv');
    }
  });

  it('terminates on every trap and crawls an aliased set once', () => {
    for (const t of expected.traps) {
      const deeper = rowsWhere(`SELECT path FROM attrs WHERE path LIKE ? AND system = 'x86_64-linux' AND variant = 'default'`, `${formatAttrPath(t)}.%.%.%`);
      expect(deeper, formatAttrPath(t)).toEqual([]);
    }
    for (const a of expected.aliasedSets) {
      // the same value under two names: whichever sorts first is crawled, the other is its alias
      const [first, second] = [formatAttrPath(a.path), formatAttrPath(a.sameAs)].sort();
      const alias = (p: string) => rowsWhere(`SELECT alias_of FROM attrs WHERE path = ? AND system = 'x86_64-linux' AND variant = 'default'`, p)[0].alias_of;
      expect(alias(second), second).toBe(first);
      expect(alias(first), first).toBeNull();
      const below = (p: string) =>
        rowsWhere(
          `SELECT COUNT(*) n FROM attrs WHERE path LIKE ? AND depth > ? AND system = 'x86_64-linux' AND variant = 'default'`,
          `${p}.%`,
          p.split('.').length + 1,
        )[0].n;
      expect(Number(below(second))).toBe(0);
    }
    const maxDepth = rowsWhere(`SELECT MAX(depth) d FROM attrs`)[0].d as unknown as number;
    expect(maxDepth).toBeLessThanOrEqual(8);
  });

  it('reads every hash spelling to the same base16 form Nix writes', () => {
    for (const h of expected.hashSpellings) {
      const drv = rowsWhere(`SELECT drv_path FROM attrs WHERE path = ? AND system = 'x86_64-linux' AND variant = 'permissive'`, formatAttrPath(h.path))[0];
      expect(drv, formatAttrPath(h.path)).toBeDefined();
    }
    const algos = rowsWhere(`SELECT DISTINCT hash_algo FROM fods`)
      .map((r) => r.hash_algo)
      .sort();
    expect(algos).toEqual(['md5', 'sha1', 'sha256', 'sha512']);
  });

  it('answers `fodder sources` on the command line with the JSON contract, and refuses what it cannot answer', async () => {
    const one = rowsWhere(`SELECT path FROM attrs WHERE status = 'drv' AND system = 'x86_64-linux' AND variant = 'default' ORDER BY path LIMIT 1`)[0].path;
    const r = await fodder(['sources', one, '--db', dbFile, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const answer = JSON.parse(r.stdout);
    expect(Object.keys(answer).sort()).toEqual(['attr', 'crawl', 'drvPath', 'sources', 'system', 'variant']);
    expect(answer).toEqual(JSON.parse(JSON.stringify(sourcesOf(db, one, {}))));
    for (const s of answer.sources) {
      expect(Object.keys(s).sort()).toEqual(['drvPath', 'git', 'hash', 'kind', 'name', 'outPath', 'postFetch', 'resolvedUrls', 'urls']);
    }
    const never = await fodder(['sources', 'no.such.attribute', '--db', dbFile]);
    expect(never.code, never.stderr).not.toBe(0);
    expect(never.stderr).toMatch(/"no.such.attribute" was never crawled/);
    const failed = await fodder(['sources', formatAttrPath(expected.uncatchable[0].path), '--db', dbFile]);
    expect(failed.code, failed.stderr).not.toBe(0);
    expect(failed.stderr).toMatch(wordings(expected.uncatchable[0].messageIncludes));
    const set = await fodder(['sources', formatAttrPath(expected.aliasedSets[0].sameAs), '--db', dbFile]);
    expect(set.code, set.stderr).not.toBe(0);
    expect(set.stderr).toMatch(/is a package set, not a derivation/);
  });

  it('lists every FOD with the systems and variants it was seen in', async () => {
    const r = await fodder(['fods', '--db', dbFile, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const fods = JSON.parse(r.stdout) as { name: string; systems: string[]; variants: string[] }[];
    expect(fods.length).toBe(Number(rowsWhere(`SELECT COUNT(*) n FROM fods`)[0].n));
    for (const e of expected.systemOnly) {
      const f = fods.filter((x) => x.name === e.fodName);
      expect(f.length, e.fodName).toBeGreaterThan(0);
      for (const x of f) for (const s of x.systems) expect(e.systems).toContain(s);
    }
    const kinds = await fodder(['fods', '--db', dbFile, '--kind', 'bogus']);
    expect(kinds.code, kinds.stderr).not.toBe(0);
    expect(kinds.stderr).toMatch(/unknown kind "bogus"/);
    expect(summary.fods).toBe(fods.length);
  });
});

describe("classifying the test package set's fetchers", () => {
  const KIND: Record<string, [string, boolean]> = {
    fetchurlBuiltin: ['url', false],
    fetchurlMirror: ['url', false],
    fetchzipTarball: ['archive', false],
    fetchzipZip: ['archive', false],
    fetchzipNoStripRoot: ['archive', false],
    fetchzipUserPostFetch: ['archive', true],
    fetchzip2017Tarball: ['archive', false],
    fetchzip2017NoStripRoot: ['archive', false],
    fetchzip2018HiddenTopEntry: ['archive', false],
    texliveTarIntoOut: ['archive', false],
    texliveStripped: ['archive', false],
    fetchpatch: ['patch', false],
    fetchpatchAlreadyNormalised: ['patch', false],
    fetchgit: ['git', false],
    fetchgitSubmodules: ['git', false],
    fetchhg: ['hg', false],
    fetchsvn: ['svn', false],
    vendored: ['vendor', false],
    requireFile: ['manual', false],
  };
  it("gives every fetcher its kind, tells a user postFetch from the fetcher's own, and reads git details", () => {
    const fetchers = (
      expected as unknown as { fetchers: Record<string, { fodName: string; rev?: string; url?: string; fetchSubmodules?: boolean; urls?: string[] }> }
    ).fetchers;
    expect(Object.keys(fetchers).sort()).toEqual(Object.keys(KIND).sort());
    for (const [name, e] of Object.entries(fetchers)) {
      const rows = rowsWhere(`SELECT kind, post_fetch, git_json, urls_json, resolved_urls_json FROM fods WHERE name = ?`, e.fodName);
      expect(rows.length, name).toBeGreaterThan(0);
      for (const r of rows) {
        expect(r.kind, name).toBe(KIND[name][0]);
        expect(Number(r.post_fetch), name).toBe(KIND[name][1] ? 1 : 0);
        if (e.rev) {
          const git = JSON.parse(r.git_json);
          expect(git).toMatchObject({ url: e.url, rev: e.rev });
          // nixpkgs' fetchgit defaults to fetchSubmodules = true
          expect(git.submodules, name).toBe(e.fetchSubmodules ?? true);
        }
        if (e.urls) expect(JSON.parse(r.urls_json)).toEqual(e.urls);
      }
    }
    // the whole environment is kept where a fetcher needs it, not for a plain download
    const envs = rowsWhere(`SELECT kind, post_fetch, env_json FROM fods`);
    for (const e of envs) {
      if (e.kind === 'url' && Number(e.post_fetch) === 0) expect(e.env_json).toBe('{}');
      else expect(JSON.parse(e.env_json)).toHaveProperty('outputHash');
    }
    // mirror:// expanded from the package set's mirrors.nix, dead mirror first
    const hello = rowsWhere(`SELECT resolved_urls_json FROM fods WHERE name = ?`, fetchers.fetchurlMirror.fodName)[0];
    expect(JSON.parse(hello.resolved_urls_json)[0]).toBe((fetchers.fetchurlMirror as unknown as { url: string }).url);
  });
});

describe('overlays', () => {
  it('crawls what an overlay adds and overrides', async () => {
    const ov = (
      expected as unknown as {
        overlay: { file: string; adds: { path: string[]; fodName: string }[]; overrides: { path: string[]; fodName: string; replaces: string }[] };
      }
    ).overlay;
    const d = tempDir();
    writeFileSync(join(d, 'c.yaml'), `overlays: [${JSON.stringify(join(ROOT, ov.file))}]\n`);
    const file = join(d, 'o.db');
    const r = await fodder([
      'crawl',
      '--config',
      join(d, 'c.yaml'),
      '--nixpkgs',
      FIXTURE,
      '--db',
      file,
      '--store',
      join(d, 'store'),
      '--system',
      'x86_64-linux',
      '--variant',
      'default',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const odb = openDb(file, { readonly: true });
    for (const a of ov.adds) expect(sourcesOf(odb, formatAttrPath(a.path)).sources.map((s) => s.name)).toContain(a.fodName);
    for (const o of ov.overrides) {
      const names = sourcesOf(odb, formatAttrPath(o.path)).sources.map((s) => s.name);
      expect(names).toContain(o.fodName);
      expect(names).not.toContain(o.replaces);
    }
    odb.close();
  });
});

describe("store paths of the test package set's FODs", () => {
  it('computes, for every FOD of the crawl, the outPath Nix wrote in its .drv', async () => {
    const { fodStorePath } = await import('../src/nix-formats/store-path.js');
    const { toSri } = await import('../src/nix-formats/hash.js');
    const fods = rowsWhere(`SELECT name, out_path, hash_algo, hash_mode, hash_hex, hash_sri FROM fods`);
    expect(fods.length).toBeGreaterThan(150);
    const modes = new Set<string>();
    for (const f of fods) {
      const hash = { algo: f.hash_algo as 'sha256', mode: f.hash_mode as 'flat' | 'recursive', hex: f.hash_hex };
      expect(fodStorePath(hash, f.name), f.name).toBe(f.out_path);
      expect(toSri({ algo: hash.algo, hex: hash.hex })).toBe(f.hash_sri);
      modes.add(`${f.hash_mode}:${f.hash_algo}`);
    }
    // flat and recursive, several algorithms: both branches of the path computation are exercised
    expect([...modes].some((m) => m.startsWith('recursive:'))).toBe(true);
    expect(modes.size).toBeGreaterThanOrEqual(5);
  });
});
