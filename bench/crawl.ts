/**
 * Crawl benchmark: a nixpkgs-scale synthetic package set, crawled by `fodder crawl` with two
 * workers, against one plain `nix-instantiate` that instantiates the same derivations into a
 * fresh chroot store on disk. fodder runs twice a round: as a user runs it (no --store: Nix writes
 * the .drv files into the crawl's scratch directory, a memory file system here, and their texts go
 * into the database), and with `--store DIR` on the same disk as the chroot store (the .drv files
 * kept there too). Runs alternate; medians are compared. Also checks that all three produced the
 * same drvPaths, that the database holds every .drv text exactly as Nix wrote it into the chroot
 * store, and reports peak memory.
 *
 *   npm run bench:crawl [-- --sets 20 --per-set 1000 --rounds 3 --settle 65]
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { writeSyntheticSet } from './synthetic-set.js';
import { timed, median } from './timed.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const sets = arg('sets', 20),
  perSet = arg('per-set', 1000),
  rounds = arg('rounds', 3),
  settle = arg('settle', 65);
const root = resolve(import.meta.dirname, '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const work = join(tmpdir(), 'fodder-bench-crawl');
rmSync(work, { recursive: true, force: true });
const set = join(work, 'set');
const shape = writeSyntheticSet(set, { sets, perSet });
console.log(`synthetic set: ${shape.attrs} package attributes in ${sets} nested sets, ${shape.fods} FODs`);
console.log(`each run starts after sync and ${settle} s of rest (see the comment on settled() in bench/timed.ts)`);

const base: number[] = [],
  ours: number[] = [],
  kept: number[] = [];
let basePaths = new Set<string>(),
  ourPaths = new Set<string>(),
  keptPaths = new Set<string>();
let coordKb = 0,
  nixKb = 0,
  baseKb = 0;
let texts = { checked: 0, differ: 0, missing: 0 };

/** One fodder crawl into a fresh database; its drvPaths. */
async function fodderRun(db: string, extra: string[]) {
  const f = await timed(
    'node',
    [cli, 'crawl', '--nixpkgs', set, '--system', 'x86_64-linux', '--variant', 'default', ...extra, '--db', db, '--workers', '2', '--no-progress', '--json'],
    { env: { FODDER_TIMINGS: '1', CI: '1' }, settleSec: settle },
  );
  coordKb = Math.max(coordKb, f.maxRssKb);
  const t = /timings: (\{.*\})/.exec(f.stderr);
  if (t) nixKb = Math.max(nixKb, (JSON.parse(t[1]) as { peakNixRssKb: number }).peakNixRssKb);
  const d = new Database(db, { readonly: true });
  const paths = new Set((d.prepare(`SELECT drv_path FROM attrs WHERE status = 'drv'`).all() as { drv_path: string }[]).map((r) => r.drv_path));
  d.close();
  return { ms: f.ms, cpu: f.machineCpu, paths };
}

/** Every derivation the chroot store holds, compared with its text in the database. */
function compareTexts(chroot: string, db: string) {
  const d = new Database(db, { readonly: true });
  const text = d.prepare(`SELECT text FROM drv_texts WHERE drv_path = ?`).pluck();
  const out = { checked: 0, differ: 0, missing: 0 };
  for (const name of readdirSync(join(chroot, 'nix', 'store'))) {
    if (!name.endsWith('.drv')) continue;
    const ours = text.get(`/nix/store/${name}`) as string | undefined;
    out.checked++;
    if (ours === undefined) out.missing++;
    else if (ours !== readFileSync(join(chroot, 'nix', 'store', name), 'utf8')) out.differ++;
  }
  d.close();
  return out;
}

const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
for (let round = 0; round < rounds; round++) {
  const s1 = join(work, `base-store-${round}`);
  const b = await timed('nix-instantiate', ['--store', s1, set, '--argstr', 'system', 'x86_64-linux'], { settleSec: settle });
  base.push(b.ms);
  baseKb = Math.max(baseKb, b.maxRssKb);
  basePaths = new Set(b.stdout.split('\n').filter(Boolean));

  const f = await fodderRun(join(work, `fodder-${round}.db`), []);
  ours.push(f.ms);
  ourPaths = f.paths;

  const k = await fodderRun(join(work, `fodder-kept-${round}.db`), ['--store', join(work, `fodder-store-${round}`)]);
  kept.push(k.ms);
  keptPaths = k.paths;
  console.log(
    `round ${round + 1}: nix-instantiate ${sec(b.ms)}, fodder crawl ${sec(f.ms)} (ratio ${(f.ms / b.ms).toFixed(3)}), with --store ${sec(k.ms)} (ratio ${(k.ms / b.ms).toFixed(3)})` +
      `; machine CPU s ${b.machineCpu.toFixed(1)}, ${f.cpu.toFixed(1)}, ${k.cpu.toFixed(1)}`,
  );
  if (round === rounds - 1) texts = compareTexts(s1, join(work, `fodder-${round}.db`));
}
const sameAs = (ps: Set<string>) => basePaths.size === ps.size && [...basePaths].every((p) => ps.has(p));
const same = sameAs(ourPaths) && sameAs(keptPaths);
const textsOk = texts.checked > 0 && texts.differ === 0 && texts.missing === 0;
console.log(`same drvPaths: ${same} (${basePaths.size} from nix-instantiate, ${ourPaths.size} from fodder, ${keptPaths.size} from fodder --store)`);
console.log(
  `.drv texts in the database equal to the chroot store's: ${textsOk} (${texts.checked} .drv files, ${texts.differ} differ, ${texts.missing} missing)`,
);
console.log(`median: nix-instantiate ${sec(median(base))}, fodder crawl (2 workers) ${sec(median(ours))}, with --store ${sec(median(kept))}`);
console.log(
  `RATIO fodder/nix-instantiate: ${(median(ours) / median(base)).toFixed(3)} (target <= 0.65); with --store DIR on disk: ${(median(kept) / median(base)).toFixed(3)}`,
);
// the chroot store's run varies most with the disk's state: the ratio against its fastest run too
console.log(
  `against the fastest nix-instantiate (${sec(Math.min(...base))}): fodder crawl ${(median(ours) / Math.min(...base)).toFixed(3)}, with --store ${(median(kept) / Math.min(...base)).toFixed(3)}`,
);
console.log(
  `peak RSS: fodder process (coordinator + worker threads) ${(coordKb / 1024).toFixed(0)} MiB, one nix-instantiate worker ${(nixKb / 1024).toFixed(0)} MiB, plain nix-instantiate ${(baseKb / 1024).toFixed(0)} MiB`,
);
rmSync(work, { recursive: true, force: true });
if (!same || !textsOk) process.exitCode = 1;
