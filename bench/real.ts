/**
 * The real-tree benchmark: `fodder crawl` of a real nixpkgs (one target, or all eight of
 * `--all`: four systems × default and permissive), and in the same run, for each target:
 *
 * - the *oracle*: one `nix-instantiate --eval --strict --read-write-mode` into a fresh chroot
 *   store on disk that forces exactly the drvPaths the crawl found (a single Nix that knew in
 *   advance which attributes evaluate, and so never met an error); also the same into a
 *   binary-cache directory on /dev/shm, the kind of store the crawl itself writes to (one
 *   target only);
 * - `nix-env -qaP --drv-path` of the same package set and config.
 *
 * It prints each wall time and CPU seconds, the peak resident memory of everything the crawl started (its own
 * process, the helper processes and every Nix, summed at the peak) and of the oracle, and the
 * ratio crawl / oracle. It checks that the oracle's store holds exactly the .drv files of the
 * crawl's closures.
 *
 *   npm run bench:real -- --nixpkgs PATH [--all] [--system S] [--variant V] [--workers 2] [--settle 20]
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { crawlArgs, realTreeArgs } from './real-args.js';
import { execa } from 'execa';
import { timed } from './timed.js';
import { DEFAULT_VARIANTS } from '../src/config/defaults.js';

const { opt, flag, nixpkgs } = realTreeArgs('npm run bench:real -- --nixpkgs PATH [--all] [--system S] [--variant V] [--workers N] [--settle S]');
const all = flag('all');
const systems = all ? ['x86_64-linux', 'i686-linux', 'x86_64-darwin', 'aarch64-linux'] : [opt('system', 'x86_64-linux')];
const variants = all ? ['default', 'permissive'] : [opt('variant', 'default')];
const workers = opt('workers', '2');
const settle = Number(opt('settle', '20'));
const root = resolve(import.meta.dirname, '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const work = join(process.env.FODDER_BENCH_DIR ?? tmpdir(), 'fodder-bench-real');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mib = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`;

// 1. the crawl
const db = join(work, 'crawl.db');
const args = [cli, ...crawlArgs({ nixpkgs, db, workers, systems, variants }), ...(opt('config', '') ? ['--config', opt('config', '')] : [])];
console.log(`crawl: ${systems.join(', ')} × ${variants.join(', ')}, ${workers} workers`);
// the package set's files read once first: the oracle, which runs after the crawl, finds them in
// the page cache, and so must the crawl (read from disk, the crawl took 16.7 s against 12.4 s)
await execa('bash', ['-c', 'find "$0" -name "*.nix" -type f -exec cat {} + > /dev/null', nixpkgs]);
const crawl = await timed('node', args, { env: { FODDER_TIMINGS: '1' }, settleSec: settle });
const summary = JSON.parse(crawl.stdout) as { attrs: Record<string, number>; drvs: number; fods: number; nix?: string };
const timings = /timings: (\{.*?\})/.exec(crawl.stderr)?.[1] ?? '{}';
console.log(
  `crawl: ${sec(crawl.ms)}, ${crawl.cpu.toFixed(1)} CPU s, peak RSS of everything it started ${mib(crawl.peakKb)}; ` +
    `${summary.attrs.total} attributes (${summary.attrs.drv} derivations, ${summary.attrs.error} errors), ` +
    `${summary.drvs} derivations in closures, ${summary.fods} FODs`,
);
console.log(`crawl timings: ${timings}; CPU s by process: ${JSON.stringify(crawl.byName)}`);

if (flag('crawl-only')) process.exit(0);

// 2. per target: the oracles and nix-env
const d = new Database(db, { readonly: true });
const drvAttrs = d.prepare(`SELECT path_json FROM attrs WHERE system = ? AND variant = ? AND status = 'drv'`).pluck();
const errors = d.prepare(`SELECT COUNT(*) FROM attrs WHERE system = ? AND variant = ? AND status = 'error' AND (error IS NULL OR error = '')`).pluck();
const closure = d
  .prepare(
    `
  WITH RECURSIVE c(p) AS (
    SELECT drv_path FROM attrs WHERE system = ? AND variant = ? AND status = 'drv'
    UNION SELECT i.input_drv FROM drv_inputs i JOIN c ON i.drv_path = c.p)
  SELECT p FROM c`,
  )
  .pluck();
let oracleSum = 0,
  shmSum = 0,
  envSum = 0,
  oraclePeak = 0,
  oracleCpu = 0,
  allSame = true;
for (const system of systems) {
  for (const variant of variants) {
    const v = DEFAULT_VARIANTS[variant as keyof typeof DEFAULT_VARIANTS];
    const paths = (drvAttrs.all(system, variant) as string[]).map((p) => JSON.parse(p) as string[]);
    const pathsFile = join(work, `paths-${system}-${variant}.json`);
    writeFileSync(pathsFile, JSON.stringify(paths));
    const configNix = `(builtins.fromJSON ${JSON.stringify(JSON.stringify(v.config))} // (${v.nix ?? '{ }'}))`;
    const importExpr = `import ${JSON.stringify(nixpkgs)} { system = ${JSON.stringify(system)}; config = ${configNix}; }`;
    const expr = `let pkgs = ${importExpr}; get = p: builtins.foldl' (v: n: v.\${n}) pkgs p; in
      map (p: (get p).drvPath) (builtins.fromJSON (builtins.readFile ${JSON.stringify(pathsFile)}))`;
    const chroot = join(work, `oracle-${system}-${variant}`);
    const o = await timed('nix-instantiate', ['--eval', '--strict', '--read-write-mode', '--store', chroot, '-E', expr], {
      env: { MALLOC_TRIM_THRESHOLD_: String(16 << 20) },
      settleSec: settle,
    });
    // the oracle into the kind of store the crawl writes to (one target only: eight take long)
    const shmDir = existsSync('/dev/shm') ? '/dev/shm/fodder-bench-oracle' : join(work, 'oracle-bc');
    rmSync(shmDir, { recursive: true, force: true });
    const s = all
      ? { ms: 0, cpu: 0 }
      : await timed('nix-instantiate', ['--eval', '--strict', '--read-write-mode', '--store', `file://${shmDir}?compression=none`, '-E', expr], {
          env: { MALLOC_TRIM_THRESHOLD_: String(16 << 20) },
          settleSec: settle,
        });
    rmSync(shmDir, { recursive: true, force: true });
    const env = await timed('nix-env', ['-f', nixpkgs, '-qaP', '--drv-path', '--argstr', 'system', system, '--arg', 'config', configNix], {
      mustSucceed: false,
      settleSec: settle,
    });
    const written = new Set(
      readdirSync(join(chroot, 'nix', 'store'))
        .filter((n) => n.endsWith('.drv'))
        .map((n) => `/nix/store/${n}`),
    );
    const ours = new Set(closure.all(system, variant) as string[]);
    const same = written.size === ours.size && [...ours].every((p) => written.has(p));
    allSame &&= same;
    oracleSum += o.ms;
    shmSum += s.ms;
    envSum += env.ms;
    oraclePeak = Math.max(oraclePeak, o.peakKb);
    oracleCpu += o.cpu;
    const envSaid = env.ok
      ? `${env.stdout.split('\n').filter(Boolean).length} packages`
      : `FAILED: ${env.stderr.split('\n').find((l) => l.startsWith('error:')) ?? 'no message'}`;
    console.log(
      `${system}/${variant}: ${paths.length} drvPaths; oracle ${sec(o.ms)} (${o.cpu.toFixed(1)} CPU s, ${mib(o.peakKb)}), ` +
        `into a binary-cache dir on /dev/shm ${sec(s.ms)} (${s.cpu.toFixed(1)} CPU s); nix-env -qaP --drv-path ${sec(env.ms)} (${envSaid}); ` +
        `oracle wrote ${written.size} .drv files, the crawl's closures hold ${ours.size}: ${same ? 'same' : 'DIFFERENT'}; ` +
        `errors without a message: ${errors.get(system, variant) as number}`,
    );
    rmSync(chroot, { recursive: true, force: true });
  }
}
d.close();
const n = systems.length * variants.length;
console.log(
  `oracle${n > 1 ? `s (sum of ${n})` : ''}: ${sec(oracleSum)}, ${oracleCpu.toFixed(1)} CPU s, peak RSS ${mib(oraclePeak)}; into /dev/shm ${sec(shmSum)}; nix-env ${sec(envSum)}`,
);
console.log(`CPU seconds crawl / oracle: ${(crawl.cpu / oracleCpu).toFixed(3)}`);
console.log(
  `RATIO crawl / oracle: ${(crawl.ms / oracleSum).toFixed(3)} (target <= 0.75)` +
    (all ? '' : `; crawl / oracle into /dev/shm: ${(crawl.ms / shmSum).toFixed(3)}`),
);
rmSync(work, { recursive: true, force: true });
if (!allSame) process.exitCode = 1;
