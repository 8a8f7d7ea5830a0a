import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import PQueue from 'p-queue';
import { slotStorePath } from '../graph/store-slots.js';
import { FodderError, ErrorCode } from '../errors.js';
import { packageRoot, workerScript } from '../config/defaults.js';
import type { CrawlSettings as Config } from '../config/settings.js';
import { openDb, type Db } from '../db/open.js';
import { closureSizeOf, crawlCounts, createCrawlStore, type AttrRow, type ShardWrite, type Target } from '../db/crawl-store.js';
import { formatAttrPath } from './attr-path.js';
import { ensureNix, existingPaths, readMirrors } from './nix-env.js';
import { checkSystems } from './preflight.js';
import { createSlotTable } from './slots.js';
import { crawlStopper } from './stop.js';
import { makeScratch, removeTree, SCRATCH_BYTES_PER_DRV } from './scratch.js';
import { rowsOf, setSignature, type WalkPolicy } from './policy.js';
import type { CrawlSummary, Progress } from './progress.js';
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

/**
 * How many targets (system × variant) are crawled at once. Two keep every worker busy while one
 * target waits for the last shard of a level; each running target costs every worker thread an
 * evaluator holding that target's evaluated package set.
 */
const TARGETS_AT_ONCE = 2;

/** A line on stderr when FODDER_TIMINGS is set. */
const trace = (line: string) => {
  if (process.env.FODDER_TIMINGS) process.stderr.write(`${line}\n`);
};

/** Cumulative phase timings of this process (FODDER_TIMINGS=1 prints them). */
const timings = { evalMs: 0, loadMs: 0, readMs: 0, writeMs: 0, runs: 0, restarts: 0, peakNixRssKb: 0 };

/**
 * Identifies a crawl by what it covers, so the same command resumes an interrupted one. The
 * package set's commit, when it has one (a service following a branch), is part of it: the
 * same checkout at a new commit is a new crawl, and the same commit resumes. (A plain path's
 * key has no `revision`, so the keys of crawls recorded before it existed still match.)
 */
function crawlKey(config: Config, attrs: string[][] | undefined): { key: string; params: unknown } {
  const params = {
    nixpkgs: config.nixpkgs,
    ...(config.revision === null ? {} : { revision: config.revision }),
    systems: config.systems,
    variants: config.variants,
    overlays: config.overlays,
    exhaustive: config.exhaustive,
    maxDepth: config.maxDepth,
    excludeTop: config.excludeTop,
    excludeAnywhere: config.excludeAnywhere,
    attrs: attrs ?? null,
    store: config.store,
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
  const pool = new Piscina({ filename: workerScript('eval-worker.js'), minThreads: config.workers, maxThreads: config.workers, idleTimeout: 60_000 });
  // drv store slots are the coordinator's to give: a thread the pool replaces frees its slot first
  const slots = createSlotTable(config.workers);
  pool.on('workerDestroy', () => slots.reclaim(pool.threads.map((t) => t.threadId)));
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
    // (Nix is ended at once on SIGINT or SIGTERM)
    const checked = ensureNix(config.nixpkgs, drvStore, options.signal);
    const mirrorsRead = readMirrors(config.nixpkgs, drvStore, options.signal);
    mirrorsRead.catch(() => undefined);
    const nix = await checked;
    const [mirrors] = await Promise.all([mirrorsRead, checkSystems(config, drvStore, options.signal)]);
    mark('mirrors');
    if (options.attrs?.length) await checkAttrsExist(config, options.attrs, drvStore, options.signal);

    stop.check();
    db = openDb(config.db, { create: true });
    return await crawlWith(options, db, pool, { scratch, drvStore, slotTable: slots.buffer }, mirrors, nix.version, started, mark, () => void removeScratch());
  } catch (err) {
    throw stop.failed(err, db);
  } finally {
    stop.dispose();
    // stopped early: Nix may still write into the scratch directory until its processes end
    if (removal === null) await stop.quiesce();
    const removed = removeScratch();
    await stop.destroyPool();
    mark('pool');
    try {
      db?.close();
    } catch {
      /* a close that fails (with WAL, nothing committed is lost) never hides how the crawl ended */
    }
    mark('db closed');
    await removed;
    mark('closed');
  }
}

/** The crawl proper, once Nix, the mirrors and the database are at hand. */
async function crawlWith(
  options: CrawlOptions,
  db: Db,
  pool: Piscina,
  dirs: { scratch: string; drvStore: string; slotTable: SharedArrayBuffer },
  mirrors: Mirrors,
  nix: string,
  started: number,
  mark: (what: string) => void,
  walked: () => void,
): Promise<CrawlSummary> {
  const { config, progress } = options;
  const store = createCrawlStore(db);
  const { key, params } = crawlKey(config, options.attrs);
  const targets: Target[] = [];
  for (const system of config.systems) for (const variant of Object.keys(config.variants)) targets.push({ system, variant });

  let crawlId = store.resumeUnfinished(key);
  const resumed = crawlId !== null;
  if (crawlId === null) {
    crawlId = store.createCrawl(
      key,
      config.nixpkgs,
      config.revision,
      params,
      mirrors,
      targets.map((t) => ({ ...t, config: config.variants[t.variant] })),
    );
  }
  const id = crawlId;
  const done = new Set(
    store
      .targets(id)
      .filter((t) => t.done)
      .map((t) => `${t.system}/${t.variant}`),
  );
  progress?.start({ crawl: id, resumed, targets: targets.length });

  mark('db');
  const policy: WalkPolicy = {
    exhaustive: config.exhaustive,
    maxDepth: config.maxDepth,
    excludeTop: new Set(config.excludeTop),
    excludeAnywhere: new Set(config.excludeAnywhere),
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
  await Promise.all(
    todo.map((t) =>
      queue.add(async () => {
        const resumedTarget = await crawlTarget({
          config,
          policy,
          pool,
          store,
          crawl: id,
          target: t,
          mirrors,
          roots: options.attrs ?? [[]],
          progress,
          writer,
          closure,
          sessions,
          seen: new Set(),
          stopping: () => options.signal?.aborted === true,
          ...dirs,
        });
        if (resumedTarget) continued = true;
        mark('walked');
        writer.flush();
        store.finishTarget(id, t, resumedTarget);
        mark('finishTarget');
        progress?.targetDone(t);
      }),
    ),
  );
  // Nix is done with the scratch directory; what the shards wrote becomes durable
  walked();
  writer.flush();
  writer.commit();
  const durationMs = Date.now() - started;
  if (process.env.FODDER_TIMINGS) {
    const use = process.resourceUsage();
    trace(
      `timings: ${JSON.stringify(timings)} total ${durationMs} ms; fodder process cpu user ${Math.round(use.userCPUTime / 1000)} ms` +
        ` system ${Math.round(use.systemCPUTime / 1000)} ms, ${use.minorPageFault} page faults`,
    );
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
  /** the drv store slots (src/eval/slots.ts) */
  slotTable: SharedArrayBuffer;
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
  await walk(job, rows);
  return continued;
}

/** The sets of one depth whose children are walked, and how far their alias decisions have come. */
interface Level {
  sets: AttrRow[];
  /** every set of the level is known (the level above is decided); they are then sorted by path */
  complete: boolean;
  /** sets[0 .. decided) are decided: fingerprinted, alias or not, their expandable children queued */
  decided: number;
}

/**
 * Walks the tree from the roots: every child of a set that is descended into is evaluated, and
 * each set, once its children are known, is fingerprinted and compared with the sets before it
 * (an alias set is not descended into). The decisions are taken in a fixed order, level by
 * level and by path within a level, so the records are the same whatever order the shards come
 * back in. The work is not: a set's grandchildren are sent to the pool as soon as the set and
 * every set before it on its level are decided, so the next level starts under the tail of the
 * current one (a barrier per level left workers idle while the level's last shards ran).
 *
 * Paths wait in a queue and go out in shards of at most `shardSize`, smaller as the queue runs
 * low (a shard is a share of what is queued, at least 25 paths), so that each worker always has
 * work queued and a level ends on small shards.
 */
function walk(job: TargetJob, rows: Map<string, AttrRow>): Promise<void> {
  const { config } = job;
  const sigIndex = new Map<string, string>();
  const levels: Level[] = [];
  const queue: string[][] = [];
  let inFlight = 0;
  let first = 0; // the first level not fully decided
  let over = false;
  let failed = false;
  return new Promise<void>((resolve, reject) => {
    const fail = (err: unknown) => {
      if (!failed) {
        failed = true;
        reject(err);
      }
    };
    /** queues the children of `set` that no row holds yet */
    const descend = (set: AttrRow) => {
      for (const name of set.children!) {
        const path = [...set.pathJson, name];
        if (!rows.has(formatAttrPath(path))) queue.push(path);
      }
    };
    const send = () => {
      while (queue.length > 0 && (queue.length >= config.shardSize || inFlight < config.workers * 2)) {
        const size = Math.max(25, Math.min(config.shardSize, Math.ceil(queue.length / (config.workers * 3))));
        const shard = queue.splice(0, size);
        inFlight++;
        job.progress?.queued(1, shard.length);
        evaluateShard(job, rows, shard).then(() => {
          inFlight--;
          step();
        }, fail);
      }
    };
    /** the rows of a set's children, or null while one is still being evaluated */
    const childRows = (set: AttrRow): AttrRow[] | null => {
      const out: AttrRow[] = [];
      for (const name of set.children!) {
        const row = rows.get(formatAttrPath([...set.pathJson, name]));
        if (row === undefined) return null;
        out.push(row);
      }
      return out;
    };
    /** takes every decision whose inputs are known, in order; queues what they open */
    const decide = () => {
      if (levels.length === 0) {
        // the roots first: nothing else is sent before they are all back (a root the policy
        // excludes has no row)
        if (inFlight > 0 || queue.length > 0) return;
        const roots = job.roots.map((p) => rows.get(formatAttrPath(p)));
        levels.push({ sets: roots.filter(expandable) as AttrRow[], complete: true, decided: 0 });
        levels[0].sets.sort(byPath);
        for (const set of levels[0].sets) descend(set);
      }
      const changed: AttrRow[] = [];
      try {
        while (!over) {
          const level = levels[first];
          while (level.decided < level.sets.length) {
            const set = level.sets[level.decided];
            const children = childRows(set);
            if (children === null) return;
            const sig = setSignature(children) ?? '-';
            const aliasOf = sig !== '-' && sigIndex.has(sig) ? sigIndex.get(sig)! : null;
            if (sig !== '-' && !aliasOf) sigIndex.set(sig, set.path);
            if (set.sig !== sig || set.aliasOf !== aliasOf) {
              set.sig = sig;
              set.aliasOf = aliasOf;
              changed.push(set);
            }
            if (!aliasOf) {
              const opened = children.filter(expandable);
              if (opened.length > 0) {
                (levels[first + 1] ??= { sets: [], complete: false, decided: 0 }).sets.push(...opened);
                for (const child of opened) descend(child);
              }
            }
            level.decided++;
          }
          // the level is decided: the next is whole (what was written of the levels before is
          // made durable; the rest is committed when the crawl's walk ends, see crawlWith)
          job.writer.commit();
          const next = levels[first + 1];
          if (next === undefined) {
            over = true;
            break;
          }
          next.sets.sort(byPath);
          next.complete = true;
          first++;
        }
      } finally {
        if (changed.length) job.writer.enqueue(() => job.store.writeSigs(job.crawl, job.target, changed));
      }
    };
    const step = () => {
      if (failed) return;
      try {
        decide();
        send();
        if (inFlight > 0) return;
        if (over) {
          resolve();
          return;
        }
        // a bug: every path sent comes back with a record
        throw new Error(
          `${job.target.system}/${job.target.variant}: the walk stopped with no work left and ` +
            `level ${first} undecided (a child of ${levels[first]?.sets[levels[first].decided]?.path ?? 'a root'} has no record)`,
        );
      } catch (err) {
        fail(err);
      }
    };
    for (const p of job.roots) if (!rows.has(formatAttrPath(p))) queue.push(p);
    step();
  });
}

function expandable(r: AttrRow | undefined): boolean {
  return r !== undefined && r.status === 'set' && r.children !== null && r.children.length > 0;
}

function byPath(a: AttrRow, b: AttrRow): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/** Evaluates one shard on the pool and writes its result. */
async function evaluateShard(job: TargetJob, rows: Map<string, AttrRow>, shard: string[][]): Promise<void> {
  const { config, target } = job;
  const variant = config.variants[target.variant];
  const task: ShardTask = {
    nixpkgs: config.nixpkgs,
    system: target.system,
    variant: target.variant,
    config: variant.config,
    configNix: variant.nix,
    overlays: config.overlays,
    paths: shard,
    exhaustive: config.exhaustive,
    store: job.drvStore,
    slotTable: job.slotTable,
    pruneStoreAfter: config.store === null ? config.limits.scratchDrvs : null,
    mirrors: job.mirrors,
    explainErrors: config.explainErrors,
    timeoutMs: config.limits.shardTimeoutSec * 1000,
    memoryMb: config.limits.memoryMb,
    evaluator: join(packageRoot(), 'nix', 'evaluator.nix'),
    sessions: job.sessions,
    scratch: job.scratch,
  };
  let result: ShardResult | ShardFailure;
  try {
    result = (await job.pool.run(task)) as ShardResult | ShardFailure;
  } catch (err) {
    // the worker thread itself died
    result = { ok: false, code: ErrorCode.WORKER_FAILED, message: (err as Error).message };
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
  } else if (result.code === ErrorCode.NIX_FAILED) {
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
    timings.evalMs += st.evalMs;
    timings.loadMs += st.loadMs;
    timings.readMs += st.readMs;
    timings.runs += st.nixRuns;
    timings.restarts += st.restarts;
    timings.peakNixRssKb = Math.max(timings.peakNixRssKb, st.peakNixRssKb);
  }
  job.writer.add({ crawl: job.crawl, target, rows: newRows, drvs, sources, seenFods });
  for (const r of newRows) rows.set(r.path, r);
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
    if (pending === 0) {
      store.begin();
      opened = Date.now();
    }
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
  const rethrow = () => {
    if (failed !== null) throw failed;
  };
  const schedule = () => {
    if (!scheduled) {
      scheduled = true;
      setImmediate(next);
    }
  };
  const enqueue = (write: () => void) => {
    queue.push(write);
    schedule();
  };
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

/**
 * Makes every drv store directory (one per worker slot). A directory that holds a chroot store
 * (`nix/var/nix/db`, as earlier fodder versions wrote) is refused rather than mixed into.
 */
function prepareDrvStores(store: string, workers: number): void {
  for (let slot = 0; slot < workers; slot++) {
    const dir = slotStorePath(store, slot);
    if (existsSync(join(dir, 'nix', 'var', 'nix', 'db')) && !existsSync(join(dir, 'nix-cache-info'))) {
      throw new FodderError(
        ErrorCode.CONFIG_INVALID,
        `${dir} is a chroot Nix store; fodder now keeps .drv files in a binary-cache directory: remove it or choose another --store`,
        { store: dir },
      );
    }
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new FodderError(ErrorCode.CONFIG_INVALID, `cannot create the store directory ${dir}: ${(err as Error).message}`, { store: dir });
    }
  }
}

async function checkAttrsExist(config: Config, attrs: string[][], drvStore: string, signal?: AbortSignal): Promise<void> {
  const found = attrs.map(() => false);
  for (const system of config.systems) {
    for (const v of Object.values(config.variants)) {
      const here = await existingPaths(config.nixpkgs, system, v.config, v.nix, config.overlays, attrs, drvStore, signal);
      here.forEach((ok, i) => {
        if (ok) found[i] = true;
      });
      if (found.every(Boolean)) return;
    }
  }
  const missing = attrs.filter((_, i) => !found[i]).map(formatAttrPath);
  throw new FodderError(
    ErrorCode.ATTR_UNKNOWN,
    `unknown attribute${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')} in ${config.nixpkgs} (for ${config.systems.join(', ')})`,
    { attrs: missing },
  );
}

/**
 * The crawl's summary. `closure`: every derivation in the closures of its attributes, when this
 * process crawled all of them; otherwise the database is asked (a recursive query).
 */
function summarise(db: Db, crawl: number, config: Config, resumed: boolean, durationMs: number, closure: Set<string> | null, nix: string): CrawlSummary {
  const { byStatus: counts, fods: fodCount } = crawlCounts(db, crawl);
  const by = Object.fromEntries(counts.map((c) => [c.status, c.n])) as Record<string, number>;
  const drvs = closure ? closure.size : closureSizeOf(db, crawl);
  return {
    crawl,
    resumed,
    systems: config.systems,
    variants: Object.keys(config.variants),
    attrs: { total: counts.reduce((a, c) => a + c.n, 0), drv: by.drv ?? 0, set: by.set ?? 0, error: by.error ?? 0, skipped: by.skipped ?? 0 },
    drvs,
    fods: fodCount,
    durationMs,
    nix,
  };
}
