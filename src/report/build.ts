import type { Db } from '../db/open.js';
import { ensureFetchSchema } from '../db/fetch-schema.js';
import { toSri, type HashAlgo } from '../nix-formats/hash.js';
import { FOD_KINDS, type Fod } from '../graph/types.js';
import { chooseCrawl } from '../db/crawls.js';
import { fodsOfCrawl } from '../db/fods.js';
import { createFetchHistory, evalErrorsOf, latestResults, mirroredDrvPaths, previousSnapshot, saveSnapshot, type TryRow } from '../db/report-queries.js';
import { createDependents } from './dependents.js';
import type { BrokenHashEntry, DeadEntry, EvalErrorEntry, HashJson, Report, RottingEntry, UnverifiableEntry, UrlOutcome } from './types.js';

const hashJson = (algo: HashAlgo, hex: string): HashJson => ({ algo, hex, sri: toSri({ algo, hex }) });

export interface BuildReportOptions {
  /** record this report as a snapshot, so the next one can tell what is new (default true) */
  save?: boolean;
  /** the crawl to report on (default: the latest finished one) */
  crawl?: number;
}

/**
 * The report on the latest finished crawl (or the one asked for): broken hashes, dead sources, rotting sources (mirrored
 * through a later URL while earlier ones fail), sources fodder could not judge (unverifiable:
 * never counted as broken or dead) and evaluation errors, each with the attributes that need
 * it and whether the previous report listed it.
 */
export function buildReport(db: Db, options: BuildReportOptions = {}): Report {
  ensureFetchSchema(db);
  const crawl = chooseCrawl(db, options.crawl);
  const fods = fodsOfCrawl(db, crawl.id, FOD_KINDS);
  const mirrored = mirroredDrvPaths(db);
  const latest = latestResults(db);
  const history = createFetchHistory(db);
  const previous = previousSnapshot(db);
  const previousKeys = new Set<string>(previous ? (JSON.parse(previous.keys_json) as string[]) : []);
  const isNew = (key: string) => !previousKeys.has(key);

  /** the last try of each URL in a run, in URL order */
  const urlOutcomes = (run: number, drv: string): UrlOutcome[] => {
    const last = new Map<number, TryRow>();
    for (const a of history.attempts(run, drv)) last.set(a.url_index, a);
    return [...last.entries()].sort((x, y) => x[0] - y[0]).map(([, a]) => ({ url: a.url, outcome: a.outcome, httpStatus: a.http_status, message: a.message }));
  };
  /** start of the streak of runs in the same state as the latest */
  const since = (drv: string, same: (r: { verdict: string; url_index: number | null }) => boolean): string => {
    let at = '';
    for (const r of history.verdicts(drv)) {
      if (!same(r)) break;
      at = r.at;
    }
    return at;
  };

  let dependents: ReturnType<typeof createDependents> | null = null;
  const attrsOf = (drv: string) => (dependents ??= createDependents(db, crawl.id)).needs(drv);

  const brokenHashes: BrokenHashEntry[] = [];
  const dead: DeadEntry[] = [];
  const rotting: RottingEntry[] = [];
  const unverifiable: UnverifiableEntry[] = [];
  let mirroredCount = 0;
  let unfetched = 0;
  const keys: string[] = [];
  for (const fod of fods) {
    const r = latest.get(fod.drvPath);
    if (mirrored.has(fod.drvPath)) {
      mirroredCount++;
      if (r && r.verdict === 'ok' && (r.url_index ?? 0) > 0) {
        const key = `rotting:${fod.drvPath}`;
        keys.push(key);
        rotting.push({
          fod,
          url: r.url ?? '',
          urlIndex: r.url_index ?? 0,
          failing: urlOutcomes(r.run_id, fod.drvPath).filter((u) => u.outcome !== 'ok'),
          attrs: attrsOf(fod.drvPath),
          since: since(fod.drvPath, (x) => x.verdict === 'ok' && (x.url_index ?? 0) > 0),
          lastTried: r.at,
          new: isNew(key),
        });
      }
      continue;
    }
    // never tried, or fetched and since lost from the mirror
    if (!r || r.verdict === 'ok') {
      unfetched++;
      continue;
    }
    if (r.verdict === 'unverifiable') {
      // fodder could not judge it: never listed as broken or dead
      const key = `unverifiable:${fod.drvPath}`;
      keys.push(key);
      unverifiable.push({
        fod,
        reason: r.reason ?? 'unknown',
        message: r.message ?? '',
        plugin: r.plugin,
        attrs: attrsOf(fod.drvPath),
        since: since(fod.drvPath, (x) => x.verdict === 'unverifiable'),
        lastTried: r.at,
        new: isNew(key),
      });
      continue;
    }
    if (r.verdict === 'broken-hash') {
      const key = `broken:${fod.drvPath}`;
      keys.push(key);
      const actualAlgo = (r.actual_algo ?? fod.hash.algo) as HashAlgo;
      brokenHashes.push({
        fod,
        url: r.url ?? '',
        expected: hashJson(fod.hash.algo, fod.hash.hex),
        actual: hashJson(actualAlgo, r.actual_hex ?? ''),
        urls: urlOutcomes(r.run_id, fod.drvPath),
        attrs: attrsOf(fod.drvPath),
        since: since(fod.drvPath, (x) => x.verdict === 'broken-hash'),
        lastTried: r.at,
        new: isNew(key),
      });
    } else {
      const key = `dead:${fod.drvPath}`;
      keys.push(key);
      dead.push({
        fod,
        urls: urlOutcomes(r.run_id, fod.drvPath),
        attrs: attrsOf(fod.drvPath),
        since: since(fod.drvPath, (x) => x.verdict === 'dead'),
        lastTried: r.at,
        new: isNew(key),
      });
    }
  }

  const evalErrors: EvalErrorEntry[] = evalErrorsOf(db, crawl.id).map((e) => {
    const key = `eval:${e.system}/${e.variant}/${e.path}`;
    keys.push(key);
    return { attr: e.path, system: e.system, variant: e.variant, message: e.error ?? '', kind: e.error_kind, new: isNew(key) };
  });

  const byAttrs = (a: { attrs: { total: number }; fod: Fod }, b: { attrs: { total: number }; fod: Fod }) =>
    b.attrs.total - a.attrs.total || a.fod.name.localeCompare(b.fod.name);
  brokenHashes.sort(byAttrs);
  dead.sort(byAttrs);
  rotting.sort(byAttrs);
  unverifiable.sort((a, b) => a.reason.localeCompare(b.reason) || byAttrs(a, b));

  const generatedAt = new Date().toISOString();
  // a partial crawl's report is not what the next one should compare with
  if (options.save !== false && crawl.status === 'done') {
    saveSnapshot(db, crawl.id, generatedAt, keys);
  }
  return {
    crawl,
    generatedAt,
    previousReport: previous ? { id: previous.id, createdAt: previous.created_at } : null,
    summary: {
      fods: fods.length,
      mirrored: mirroredCount,
      brokenHash: brokenHashes.length,
      dead: dead.length,
      rotting: rotting.length,
      unfetched,
      unverifiable: unverifiable.length,
      evalErrors: evalErrors.length,
    },
    brokenHashes,
    dead,
    rotting,
    unverifiable,
    evalErrors,
  };
}
