import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import PQueue from 'p-queue';
import { slotStorePath } from '../graph/store-slots.js';
import { FodderError, ErrorCode } from '../errors.js';
import { packageRoot, workerScript } from '../config/defaults.js';
import type { Config } from '../config/load.js';
import { openDb, type Db } from '../db/open.js';
import { createCrawlStore, type AttrRow, type ShardWrite, type Target } from '../db/crawl-store.js';
import { formatAttrPath } from './attr-path.js';
import { ensureNix, existingPaths, readMirrors } from './nix-env.js';
import { checkSystems } from './preflight.js';
import { crawlStopper } from './stop.js';
import { rowsOf, setSignature, type WalkPolicy } from './policy.js';
import type { Progress } from './progress.js';
import type { Mirrors } from '../graph/fod.js';
import type { ShardFailure, ShardResult, ShardTask } from './types.js';

export interface CrawlOptions {
  config: Config;
  /** start from these attribute paths instead of the whole set */
  attrs?: string[][];
  progress?: Progress;
  /** stops the crawl (its reason names the signal); the crawl is then marked interrupted */
  signal?: AbortSignal;
}

export interface CrawlSummary {
  crawl: number;
  resumed: boolean;
  systems: string[];
  variants: string[];
  attrs: { total: number; drv: number; set: number; error: number; skipped: number };
  drvs: number;
  fods: number;
  durationMs: number;
  /** the version of the Nix that evaluated (`builtins.nixVersion`, e.g. "2.26.3") */
  nix: string;
}

/**
 * How many targets (system × variant) are crawled at once. Two keep every worker busy while one
 * target waits for the last shard of a level; each running target costs every worker thread an
 * evaluator holding that target's evaluated package set.
 */
const TARGETS_AT_ONCE = 2;

/** A line on stderr when FODDER_TIMINGS is set. */
const trace = (line: string) => { if (process.env.FODDER_TIMINGS) process.stderr.write(`${line}\n`); };

/** Cumulative phase timings of this process (FODDER_TIMINGS=1 prints them). */
const timings = { evalMs: 0, loadMs: 0, readMs: 0, writeMs: 0, runs: 0, restarts: 0, peakNixRssKb: 0 };

/** Identifies a crawl by what it covers, so the same command resumes an interrupted one. */
function crawlKey(config: Config, attrs: string[][] | undefined): { key: string; params: unknown } {
  const params = {
    nixpkgs: config.nixpkgs, systems: config.systems, variants: config.variants, overlays: config.overlays,
    exhaustive: config.exhaustive, maxDepth: config.maxDepth, excludeTop: config.excludeTop,
    excludeAnywhere: config.excludeAnywhere, attrs: attrs ?? null, store: config.store,
  };
  return { key: createHash('sha256').update(JSON.stringify(params)).digest('hex'), params };
}

/**
 * Walks the package set for every system and variant, level by level, sending shards to the
 * worker pool and writing what comes back. Resumable: all state is in the database.
 */
export async function crawl(options: CrawlOptions): Promise<CrawlSummary> {
  const { config } = options;
  const started = Date.now();
  const mark = (what: string) => trace(`mark: ${what} ${performance.now().toFixed(0)} ms at ${Date.now() % 100000}`);
  mark('start');
  // the pool's threads start (and load their modules) while the mirror list is read and the database opened
  const pool = new Piscina({
    filename: workerScript('eval-worker.js'), minThreads: config.workers, maxThreads: config.workers,
    idleTimeout: 60_000,
  });
  // the evaluators' spec files and Nix's own temporary files: removed when the crawl ends (or, after
  // a kill, by the next crawl)
  const scratch = makeScratch(config.store === null ? config.workers * config.limits.scratchDrvs * SCRATCH_BYTES_PER_DRV : 0);
  // removed as soon as Nix's work is done (the database's last commit and close overlap it), or
  // when the crawl fails
  let removal: Promise<void> | null = null;
  const removeScratch = () => (removal ??= removeTree(scratch));
  const stop = crawlStopper(options.signal, pool);
  let db: Db | null = null;
  try {
    // where Nix writes the .drv files: --store keeps them; otherwise they live in the scratch
    // directory for as long as the crawl runs (their texts go into the database)
    const drvStore = config.store ?? join(scratch, 'drvs');
    prepareDrvStores(drvStore, config.workers);
    // Nix's version check, the systems' check and the mirror list at once; a missing or too old
    // Nix is what is said
    const checked = ensureNix(config.nixpkgs, drvStore);
    const mirrorsRead = readMirrors(config.nixpkgs, drvStore);
    mirrorsRead.catch(() => undefined);
    const nix = await checked;
    const [mirrors] = await Promise.all([mirrorsRead, checkSystems(config, drvStore)]);
    mark('mirrors');
    if (options.attrs?.length) await checkAttrsExist(config, options.attrs, drvStore);

    stop.check();
    db = openDb(config.db, { create: true });
    return await crawlWith(options, db, pool, { scratch, drvStore }, mirrors, nix.version, started, mark, () => void removeScratch());
  } catch (err) {
    throw stop.failed(err, db);
  } finally {
    stop.dispose();
    // stopped early: Nix may still write into the scratch directory until its processes end
    if (removal === null) await stop.quiesce();
    const removed = removeScratch();
    await stop.destroyPool();
    mark('pool');
    try { db?.close(); } catch { /* a close that fails (with WAL, nothing committed is lost) never hides how the crawl ended */ }
    mark('db closed');
    await removed;
    mark('closed');
  }
}

/**
 * Removes a directory tree: an `rm -rf` for each entry, all at once (the entries of a crawl's
 * scratch directory are the workers' drv stores, two files per .drv), then the directory.
 * On this machine `rm -rf` took a third of the time of Node's rmSync for 100,000 files.
 */
async function removeTree(dir: string): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  await Promise.all(names.map((n) => removeDir(join(dir, n))));
  try { rmSync(dir, { recursive: true, force: true }); } catch { /* left for the next crawl, which removes a dead crawl's scratch */ }
}

/** `rm -rf DIR` in a process of its own; rmSync when rm cannot be run. */
function removeDir(dir: string): Promise<void> {
  return new Promise((resolve) => {
    const fallback = () => { rmSync(dir, { recursive: true, force: true }); resolve(); };
    const rm = spawn('rm', ['-rf', '--', dir], { stdio: 'ignore' });
    rm.once('error', fallback);
    rm.once('close', (code) => (code === 0 ? resolve() : fallback()));
  });
}

/** The crawl proper, once Nix, the mirrors and the database are at hand. */
async function crawlWith(
  options: CrawlOptions, db: Db, pool: Piscina, dirs: { scratch: string; drvStore: string }, mirrors: Mirrors, nix: string, started: number,
  mark: (what: string) => void, walked: () => void,
): Promise<CrawlSummary> {
  const { config, progress } = options;
  const store = createCrawlStore(db);
  const { key, params } = crawlKey(config, options.attrs);
  const targets: Target[] = [];
  for (const system of config.systems) for (const variant of Object.keys(config.variants)) targets.push({ system, variant });

  let crawlId = store.resumeUnfinished(key);
  const resumed = crawlId !== null;
  if (crawlId === null) {
    crawlId = store.createCrawl(key, config.nixpkgs, params, mirrors,
      targets.map((t) => ({ ...t, config: config.variants[t.variant] })));
  }
  const id = crawlId;
  const done = new Set(store.targets(id).filter((t) => t.done).map((t) => `${t.system}/${t.variant}`));
  progress?.start({ crawl: id, resumed, targets: targets.length });

  mark('db');
  const policy: WalkPolicy = {
    exhaustive: config.exhaustive, maxDepth: config.maxDepth,
    excludeTop: new Set(config.excludeTop), excludeAnywhere: new Set(config.excludeAnywhere),
  };
  const writer = createShardWriter(store, progress);
  // the union of every shard's closure, for the summary, while every target runs in this process
  const closure: Set<string> | null = done.size === 0 ? new Set() : null;
  let continued = false;
  // Targets run TARGETS_AT_ONCE at a time, their shards spread over every worker: each worker
  // thread keeps one evaluator per running target, holding that target's evaluated package set
  const todo = targets.filter((t) => !done.has(`${t.system}/${t.variant}`));
  const sessions = Math.min(TARGETS_AT_ONCE, todo.length);
  const queue = new PQueue({ concurrency: Math.max(1, sessions) });
  await Promise.all(todo.map((t) => queue.add(async () => {
    const resumedTarget = await crawlTarget({
      config, policy, pool, store, crawl: id, target: t, mirrors, roots: options.attrs ?? [[]], progress, writer, closure,
      sessions, seen: new Set(), stopping: () => options.signal?.aborted === true, ...dirs,
    });
    if (resumedTarget) continued = true;
    mark('walked');
    writer.flush();
    store.finishTarget(id, t, resumedTarget);
    mark('finishTarget');
    progress?.targetDone(t);
  })));
  // Nix is done with the scratch directory; what the shards wrote becomes durable
  walked();
  writer.flush();
  writer.commit();
  const durationMs = Date.now() - started;
  if (process.env.FODDER_TIMINGS) {
    const use = process.resourceUsage();
    trace(`timings: ${JSON.stringify(timings)} total ${durationMs} ms; fodder process cpu user ${Math.round(use.userCPUTime / 1000)} ms`
      + ` system ${Math.round(use.systemCPUTime / 1000)} ms, ${use.minorPageFault} page faults`);
  }
  store.finishCrawl(id, durationMs);
  const summary = summarise(db, id, config, resumed, durationMs, continued ? null : closure, nix);
  mark('summarised');
  progress?.finish(summary);
  return summary;
}

interface TargetJob {
  config: Config;
  policy: WalkPolicy;
  pool: Piscina;
  store: ReturnType<typeof createCrawlStore>;
  crawl: number;
  target: Target;
  mirrors: Mirrors;
  roots: string[][];
  progress?: Progress;
  writer: ReturnType<typeof createShardWriter>;
  /** collects every shard's closure (null: not needed) */
  closure: Set<string> | null;
  /** scratch directory of this crawl (see ShardTask.scratch) */
  scratch: string;
  /** where Nix writes the .drv files (see ShardTask.store) */
  drvStore: string;
  /** evaluators a worker thread keeps (see ShardTask.sessions) */
  sessions: number;
  /** FODs this process has written to fod_seen for this target */
  seen: Set<string>;
  /** true once the crawl is being stopped (a signal): what shards return then is not written */
  stopping: () => boolean;
}

/** Crawls one target; true when it continued from attributes an earlier run recorded. */
async function crawlTarget(job: TargetJob): Promise<boolean> {
  const { store, crawl, target } = job;
  const rows = new Map<string, AttrRow>();
  for (const r of store.loadAttrs(crawl, target)) rows.set(r.path, r);
  job.progress?.resume(target, rows.size);
  const continued = rows.size > 0;

  const rootPaths = job.roots.filter((p) => !rows.has(formatAttrPath(p)));
  await evaluate(job, rows, rootPaths);

  const sigIndex = new Map<string, string>();
  let frontier = job.roots.map((p) => rows.get(formatAttrPath(p))!).filter(expandable);
  while (frontier.length) {
    // what was written of the levels before is durable once the next begins; the rest is
    // committed when the crawl's walk ends (see crawlWith)
    job.writer.commit();
    frontier.sort(byPath);
    const pending: string[][] = [];
    for (const set of frontier) {
      for (const name of set.children!) {
        const path = [...set.pathJson, name];
        if (!rows.has(formatAttrPath(path))) pending.push(path);
      }
    }
    await evaluate(job, rows, pending);

    // every child of the frontier is now known: fingerprint the sets, find aliases
    const changed: AttrRow[] = [];
    const next: AttrRow[] = [];
    for (const set of frontier) {
      const children = set.children!.map((n) => rows.get(formatAttrPath([...set.pathJson, n]))!);
      const sig = setSignature(children) ?? '-';
      const aliasOf = sig !== '-' && sigIndex.has(sig) ? sigIndex.get(sig)! : null;
      if (sig !== '-' && !aliasOf) sigIndex.set(sig, set.path);
      if (set.sig !== sig || set.aliasOf !== aliasOf) { set.sig = sig; set.aliasOf = aliasOf; changed.push(set); }
      if (!aliasOf) next.push(...children.filter(expandable));
    }
    if (changed.length) job.writer.enqueue(() => store.writeSigs(crawl, target, changed));
    frontier = next;
  }
  return continued;
}

function expandable(r: AttrRow | undefined): boolean {
  return r !== undefined && r.status === 'set' && r.children !== null && r.children.length > 0;
}

function byPath(a: AttrRow, b: AttrRow): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/** Sends `paths` to the pool in shards and writes each result as it arrives. */
async function evaluate(job: TargetJob, rows: Map<string, AttrRow>, paths: string[][]): Promise<void> {
  if (paths.length === 0) return;
  const { config, target } = job;
  const variant = config.variants[target.variant];
  const size = Math.max(25, Math.min(config.shardSize, Math.ceil(paths.length / (config.workers * 3))));
  const shards: string[][][] = [];
  for (let i = 0; i < paths.length; i += size) shards.push(paths.slice(i, i + size));
  job.progress?.queued(shards.length, paths.length);

  await Promise.all(shards.map(async (shard) => {
    const task: ShardTask = {
      nixpkgs: config.nixpkgs, system: target.system, variant: target.variant,
      config: variant.config, configNix: variant.nix, overlays: config.overlays, paths: shard,
      exhaustive: config.exhaustive, store: job.drvStore, storeSlots: config.workers,
      pruneStoreAfter: config.store === null ? config.limits.scratchDrvs : null, mirrors: job.mirrors, explainErrors: config.explainErrors,
      timeoutMs: config.limits.shardTimeoutSec * 1000, memoryMb: config.limits.memoryMb,
      evaluator: join(packageRoot(), 'nix', 'evaluator.nix'), sessions: job.sessions, scratch: job.scratch,
    };
    let result: ShardResult | ShardFailure;
    try {
      result = (await job.pool.run(task)) as ShardResult | ShardFailure;
    } catch (err) {
      // the worker thread itself died
      result = { ok: false, code: 'WORKER_FAILED', message: (err as Error).message };
    }
    // a stop kills the evaluators and the pool: what failed then failed of that
    if (job.stopping()) throw new FodderError(ErrorCode.INTERRUPTED, 'the crawl is stopping', {});
    let newRows: AttrRow[];
    let drvs: ShardResult['drvs'] = [];
    let sources: ShardResult['sources'] = [];
    let seenFods: string[] = [];
    if (result.ok) {
      newRows = result.attrs.flatMap((a) => rowsOf(job.policy, a));
      drvs = result.drvs;
      sources = result.sources;
      // every shard's closure holds the bootstrap's FODs and more that earlier shards wrote already
      seenFods = result.closureFods.filter((f) => !job.seen.has(f));
      for (const f of seenFods) job.seen.add(f);
      if (job.closure) {
        for (const d of result.drvs) job.closure.add(d.drvPath);
        for (const d of result.earlierDrvs) job.closure.add(d);
      }
    } else if (result.code === 'NIX_FAILED') {
      // the package set itself does not load for this target (a syntax error, a top level that
      // throws, a config it refuses): nothing of it can be crawled, and the crawl stops (failed)
      // with Nix's message
      throw new FodderError(ErrorCode.NIX_FAILED, result.message, { ...target, nixpkgs: config.nixpkgs });
    } else {
      if (/^E[A-Z0-9]+$/.test(result.code)) {
        // a failed system call in a worker travels as its errno alone (EACCES, ENOSPC...): the
        // machine, not this shard, is the problem, and the crawl stops (marked failed)
        throw new FodderError(ErrorCode.IO_ERROR, `${target.system}/${target.variant}: ${result.message}`, { ...target, errno: result.code });
      }
      // fodder's own failure on this shard: recorded against its attributes, and the crawl goes on
      const error = `fodder could not evaluate this shard (${result.code}): ${result.message}`;
      newRows = shard.map((p) => rowsOf(job.policy, { path: p, status: 'error', errorKind: 'internal', error })).flat();
    }
    if (result.ok) {
      const st = result.stats;
      timings.evalMs += st.evalMs; timings.loadMs += st.loadMs; timings.readMs += st.readMs;
      timings.runs += st.nixRuns; timings.restarts += st.restarts;
      timings.peakNixRssKb = Math.max(timings.peakNixRssKb, st.peakNixRssKb);
    }
    job.writer.add({ crawl: job.crawl, target, rows: newRows, drvs, sources, seenFods });
    for (const r of newRows) rows.set(r.path, r);
  }));
}

/**
 * Writes shard results as they arrive, into few transactions. Inserts land all over the
 * B-trees (keys are store-path hashes), so every commit rewrites most of the pages it touches:
 * in a replay of a 50,000-derivation crawl, 20 commits cost 1.2 s, 4 commits 0.4 s. So one
 * transaction stays open while shards arrive, committed every 10 seconds, when a level begins
 * (what was inserted of the levels before), and when the crawl's walk ends (the scratch
 * directory's removal has begun by then).
 *
 * Writes are queued and run one per turn of the event loop, in the order they came: the walk
 * decides the next level from the rows it keeps in memory, so the workers get the next level's
 * shards as soon as the last result of a level is in, not after the coordinator has inserted
 * the level's last shards (on nixpkgs 17.03 the workers waited 2.4 s for that at the end of the
 * top level). Whatever is committed is a prefix of the queue, so a crash loses only its tail,
 * which a re-run evaluates again. Progress counts what is new to the database as it is inserted.
 */
function createShardWriter(store: ReturnType<typeof createCrawlStore>, progress: Progress | undefined) {
  let pending = 0;
  let opened = 0;
  const queue: (() => void)[] = [];
  let scheduled = false;
  const commit = () => {
    if (pending === 0) return;
    const w0 = Date.now();
    store.commit();
    timings.writeMs += Date.now() - w0;
    trace(`commit: ${pending} writes ${Date.now() - w0} ms at ${Date.now() % 100000}`);
    pending = 0;
  };
  const run = (write: () => void) => {
    if (pending === 0) { store.begin(); opened = Date.now(); }
    const w0 = Date.now();
    write();
    timings.writeMs += Date.now() - w0;
    pending++;
    if (Date.now() - opened >= 10_000) commit();
  };
  // a write that failed in a turn of its own is thrown by the next flush or commit (a crawl
  // that ended meanwhile, its database closed, drops it and what followed)
  let failed: unknown = null;
  const next = () => {
    scheduled = false;
    if (failed !== null) return;
    const write = queue.shift();
    try {
      if (write) run(write);
    } catch (err) {
      failed = err;
      queue.length = 0;
      return;
    }
    if (queue.length) schedule();
  };
  const rethrow = () => { if (failed !== null) throw failed; };
  const schedule = () => {
    if (!scheduled) { scheduled = true; setImmediate(next); }
  };
  const enqueue = (write: () => void) => { queue.push(write); schedule(); };
  return {
    add(write: ShardWrite) {
      enqueue(() => {
        const added = store.insertShard(write);
        progress?.shardDone(write.target, write.rows, added, 1);
      });
    },
    /** a write that must follow those queued before it */
    enqueue,
    /** runs every queued write now */
    flush() {
      rethrow();
      while (queue.length) run(queue.shift()!);
    },
    /** commits what has been written so far */
    commit() {
      rethrow();
      commit();
    },
  };
}

/** What one .drv costs a drv store on a memory file system: a narinfo and a NAR, a page each. */
const SCRATCH_BYTES_PER_DRV = 8192;

/**
 * Where a crawl keeps its scratch files: on a memory file system when there is one with `room`
 * bytes free (the drv stores of a crawl without --store live there). Nix writes two files for
 * every .drv, and creates and deletes a third: on this machine's disk, a crawl of 50,000
 * derivations spent 2-3 s more system time than on /dev/shm.
 */
function scratchBase(room: number): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    const fs = statfsSync('/dev/shm');
    if (fs.bavail * fs.bsize >= room) return '/dev/shm';
  } catch { /* no memory file system */ }
  return tmpdir();
}

/**
 * This crawl's scratch directory, `fodder-crawl-<pid>-XXXXXX`. Those of crawls whose process is
 * gone (killed before they could remove theirs) are removed first.
 */
function makeScratch(room: number): string {
  const base = scratchBase(room);
  try {
    for (const name of readdirSync(base)) {
      const m = /^fodder-crawl-(\d+)-/.exec(name);
      if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) rmSync(join(base, name), { recursive: true, force: true });
    }
  } catch { /* best effort: a leftover costs a few bytes */ }
  return mkdtempSync(join(base, `fodder-crawl-${process.pid}-`));
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Makes every drv store directory (one per worker slot). A directory that holds a chroot store
 * (`nix/var/nix/db`, as earlier fodder versions wrote) is refused rather than mixed into.
 */
function prepareDrvStores(store: string, workers: number): void {
  for (let slot = 0; slot < workers; slot++) {
    const dir = slotStorePath(store, slot);
    if (existsSync(join(dir, 'nix', 'var', 'nix', 'db')) && !existsSync(join(dir, 'nix-cache-info'))) {
      throw new FodderError(ErrorCode.CONFIG_INVALID,
        `${dir} is a chroot Nix store; fodder now keeps .drv files in a binary-cache directory: remove it or choose another --store`,
        { store: dir });
    }
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new FodderError(ErrorCode.CONFIG_INVALID, `cannot create the store directory ${dir}: ${(err as Error).message}`, { store: dir });
    }
  }
}

async function checkAttrsExist(config: Config, attrs: string[][], drvStore: string): Promise<void> {
  const found = attrs.map(() => false);
  for (const system of config.systems) {
    for (const v of Object.values(config.variants)) {
      const here = await existingPaths(config.nixpkgs, system, v.config, v.nix, config.overlays, attrs, drvStore);
      here.forEach((ok, i) => { if (ok) found[i] = true; });
      if (found.every(Boolean)) return;
    }
  }
  const missing = attrs.filter((_, i) => !found[i]).map(formatAttrPath);
  throw new FodderError(ErrorCode.ATTR_UNKNOWN,
    `unknown attribute${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')} in ${config.nixpkgs} (for ${config.systems.join(', ')})`,
    { attrs: missing });
}

/**
 * The crawl's summary. `closure`: every derivation in the closures of its attributes, when this
 * process crawled all of them; otherwise the database is asked (a recursive query).
 */
function summarise(
  db: Db, crawl: number, config: Config, resumed: boolean, durationMs: number, closure: Set<string> | null, nix: string,
): CrawlSummary {
  const counts = db.prepare(`SELECT status, COUNT(*) n FROM attrs WHERE crawl_id = ? GROUP BY status`).all(crawl) as { status: string; n: number }[];
  const by = Object.fromEntries(counts.map((c) => [c.status, c.n])) as Record<string, number>;
  const drvs = closure ? closure.size : (db.prepare(`
    WITH RECURSIVE c(p) AS (
      SELECT drv_path FROM attrs WHERE crawl_id = ? AND status = 'drv'
      UNION SELECT i.input_drv FROM drv_inputs i JOIN c ON i.drv_path = c.p)
    SELECT COUNT(*) n FROM c`).get(crawl) as { n: number }).n;
  const fods = (db.prepare(`SELECT COUNT(DISTINCT drv_path) n FROM fod_seen WHERE crawl_id = ?`).get(crawl) as { n: number }).n;
  return {
    crawl, resumed, systems: config.systems, variants: Object.keys(config.variants),
    attrs: {
      total: counts.reduce((a, c) => a + c.n, 0),
      drv: by.drv ?? 0, set: by.set ?? 0, error: by.error ?? 0, skipped: by.skipped ?? 0,
    },
    drvs, fods, durationMs, nix,
  };
}
