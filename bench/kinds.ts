/**
 * The kinds of a crawl's FODs: as the crawl stored them, and as fodder's classifier classes them
 * now (re-read from each FOD's .drv text in the database), with what the native plug-ins take
 * and why they leave the rest. Then independent checks that no archive is missed: every
 * recursive FOD whose postFetch calls `unpackFile` on `$unpackDir` (what every fetchzip since
 * 2015 does), or untars `$downloadedFile` into `$out`, or whose URL is a GitHub, GitLab or
 * Bitbucket archive, or that downloads to a temporary file, must be `archive` now; every FOD
 * with a postFetch must be `archive` or `patch`.
 *
 *   npm run bench:kinds -- DB [--examples N]     (it only reads the database)
 */
import { openDb } from '../src/db/open.js';
import { parseDrv } from '../src/nix-formats/drv-parse.js';
import { fodFromDrv } from '../src/graph/fod.js';
import { readArchiveScript } from '../src/graph/archive-script.js';
import { FOD_KINDS, type Fod, type FodKind } from '../src/graph/types.js';
import { FETCHERS } from '../src/fetch/registry.js';
import { recordedFods } from '../src/query/listings.js';

const file = process.argv[2];
if (!file) {
  console.error('usage: node dist/bench/kinds.js DB [--examples N]');
  process.exit(2);
}
const examplesArg = process.argv.indexOf('--examples');
const nExamples = examplesArg > 0 ? Number(process.argv[examplesArg + 1]) : 3;

const db = openDb(file, { readonly: true });

const stored = new Map<FodKind, number>();
const now = new Map<FodKind, number>();
const moved = new Map<string, number>();
const takes = new Map<FodKind, number>();
const takenBefore = new Map<FodKind, number>();
const leaves = new Map<string, number>();
const recipes = new Map<string, number>();
const userParts = new Map<string, number>();
const missed: { name: string; why: string; kind: FodKind }[] = [];
const checks = {
  unpackDir: 0,
  tarIntoOut: 0,
  forgeArchive: 0,
  downloadToTemp: 0,
  recursiveUrl: 0,
  recursiveUrlPostFetch: 0,
  prefetchGit: 0,
  patchutils: 0,
  postFetch: 0,
  postFetchElsewhere: 0,
};
const missedOther: { name: string; why: string; kind: FodKind }[] = [];
let total = 0;
let noText = 0;
const bump = <K>(m: Map<K, number>, k: K, n = 1) => m.set(k, (m.get(k) ?? 0) + n);

const FORGE_ARCHIVE =
  /^https?:\/\/(github\.com\/[^/]+\/[^/]+\/archive\/|gitlab\.com\/[^/]+\/[^/]+\/(repository\/archive|-\/archive\/)|bitbucket\.org\/[^/]+\/[^/]+\/get\/)/;

for (const { fod, text } of recordedFods(db)) {
  total++;
  bump(stored, fod.kind);
  if (text === null) {
    noText++;
    bump(now, fod.kind);
    continue;
  }
  const drv = parseDrv(text, fod.drvPath);
  const before = FETCHERS[fod.kind];
  if (before?.canFetch(fod, drv.env).ok) bump(takenBefore, fod.kind);
  const fresh: Fod = { ...fodFromDrv(fod.drvPath, drv, {}), resolvedUrls: fod.resolvedUrls };
  bump(now, fresh.kind);
  if (fresh.kind !== fod.kind) bump(moved, `${fod.kind} -> ${fresh.kind}`);
  const plugin = FETCHERS[fresh.kind];
  const can = plugin ? plugin.canFetch(fresh, drv.env) : { ok: false as const, code: 'no-fetcher', reason: 'no native plug-in' };
  if (can.ok) bump(takes, fresh.kind);
  else bump(leaves, `${fresh.kind}: ${can.code}`);

  const script = fresh.kind === 'archive' ? readArchiveScript(drv.env) : null;
  if (script) {
    const r = script.recipe;
    const label =
      r.type === 'tar'
        ? `tar into $out (strip ${r.shape.stripComponents}, exclude ${r.shape.exclude.join(',') || '-'})`
        : `fetchzip: ${r.shape.move === 'contents' ? '$out made first, contents moved' : 'entry renamed to $out'}, count ${r.shape.count ?? '-'}, ` +
          `pick ${r.shape.pick}${r.shape.dotglob ? ' (dotglob)' : ''}${r.shape.writable ? ', chmod -R +w' : ''}${r.shape.chmodOut ? ', chmod 755 $out' : ''}` +
          `${r.shape.stripRoot ? '' : ', no stripRoot'}`;
    bump(recipes, label);
    if (script.user.length > 0) bump(userParts, script.user.join('; ').slice(0, 100));
  }

  // independent criteria
  const postFetch = drv.env.postFetch ?? '';
  const recursive = fresh.hash.mode === 'recursive';
  const isUnpackDir = recursive && /unpackFile "?\$renamed"?/.test(postFetch) && postFetch.includes('$unpackDir');
  const isTarIntoOut = recursive && /\btar\b[^\n]*-x/.test(postFetch) && postFetch.includes('$downloadedFile');
  const isForge = recursive && fresh.git === null && fresh.urls.some((u) => FORGE_ARCHIVE.test(u));
  // a recursive download that goes to a temporary file is made into a tree by its postFetch
  const isToTemp = recursive && drv.env.downloadToTemp === '1';
  if (isToTemp) checks.downloadToTemp++;
  if (postFetch.trim() !== '') {
    checks.postFetch++;
    if (fresh.kind !== 'archive' && fresh.kind !== 'patch') checks.postFetchElsewhere++;
  }
  // fetchgit runs nix-prefetch-git (its `fetcher`, or its builder); fetchpatch runs lsdiff/filterdiff
  const isPrefetchGit =
    /nix-prefetch-git/.test(`${drv.env.fetcher ?? ''} ${drv.builder} ${drv.args.join(' ')}`) || drv.inputSrcs.some((p) => p.endsWith('-nix-prefetch-git'));
  const isPatchutils = /\blsdiff\b/.test(postFetch) && /\bfilterdiff\b/.test(postFetch);
  if (isPrefetchGit) checks.prefetchGit++;
  if (isPatchutils) checks.patchutils++;
  if (isPrefetchGit && fresh.kind !== 'git') missedOther.push({ name: fresh.name, kind: fresh.kind, why: 'nix-prefetch-git' });
  if (isPatchutils && fresh.kind !== 'patch') missedOther.push({ name: fresh.name, kind: fresh.kind, why: 'lsdiff/filterdiff' });
  if (fresh.kind === 'url' && recursive) {
    checks.recursiveUrl++;
    if (postFetch.trim() !== '') checks.recursiveUrlPostFetch++;
  }
  if (isUnpackDir) checks.unpackDir++;
  if (isTarIntoOut) checks.tarIntoOut++;
  if (isForge) checks.forgeArchive++;
  if ((isUnpackDir || isTarIntoOut || isForge || isToTemp) && fresh.kind !== 'archive') {
    const why = isUnpackDir ? 'unpackFile in $unpackDir' : isTarIntoOut ? 'tar into $out' : isForge ? `URL ${fresh.urls[0]}` : 'downloadToTemp';
    missed.push({ name: fresh.name, kind: fresh.kind, why });
  }
}

const row = (cells: (string | number)[], widths: number[]) =>
  cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
console.log(`${file}: ${total} FODs of the latest crawl${noText ? ` (${noText} without a .drv text: kept as stored)` : ''}\n`);
// native: taken by the native plug-in of the kind (canFetch), as stored and as classed now
const W = [8, 7, 7, 9, 7];
console.log(row(['kind', 'stored', 'native', 'now', 'native'], W));
for (const k of FOD_KINDS) {
  if (!stored.get(k) && !now.get(k)) continue;
  console.log(row([k, stored.get(k) ?? 0, takenBefore.get(k) ?? 0, now.get(k) ?? 0, takes.get(k) ?? 0], W));
}
const sum = (m: Map<FodKind, number>) => [...m.values()].reduce((a, b) => a + b, 0);
console.log(row(['total', total, sum(takenBefore), total, sum(takes)], W));
const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
console.log('\nreclassified:');
for (const [k, n] of sorted(moved)) console.log(`  ${k}: ${n}`);
console.log('\nnot taken by a native plug-in (kind: reason):');
for (const [k, n] of sorted(leaves)) console.log(`  ${k}: ${n}`);
console.log('\narchive FODs by what their postFetch does:');
for (const [k, n] of sorted(recipes)) console.log(`  ${n}  ${k}`);
console.log('\nstatements users added after the unpacking (most common):');
for (const [k, n] of sorted(userParts).slice(0, 10)) console.log(`  ${n}  ${k}`);
console.log(
  `\nindependent checks (recursive hash): postFetch unpacks in $unpackDir ${checks.unpackDir}, ` +
    `tars $downloadedFile ${checks.tarIntoOut}, forge archive URL ${checks.forgeArchive}, downloads to a temporary file ${checks.downloadToTemp}; ` +
    `not classed archive: ${missed.length}`,
);
for (const m of missed.slice(0, nExamples * 5)) console.log(`  ${m.name} (${m.kind}): ${m.why}`);
console.log(
  `fetchgit (runs nix-prefetch-git): ${checks.prefetchGit}, fetchpatch (runs lsdiff and filterdiff): ${checks.patchutils}; not classed git or patch: ${missedOther.length}`,
);
for (const m of missedOther.slice(0, nExamples * 5)) console.log(`  ${m.name} (${m.kind}): ${m.why}`);
console.log(`FODs with a postFetch: ${checks.postFetch}, neither archive nor patch: ${checks.postFetchElsewhere}`);
console.log(`url FODs with a recursive hash left: ${checks.recursiveUrl}, of which with a postFetch: ${checks.recursiveUrlPostFetch}`);
db.close();
