import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { readDrvClosure, type DrvGraph, type ReadClosure } from '../graph/closure.js';
import { slotStorePath } from '../graph/store-slots.js';
import { ErrorCode } from '../errors.js';
import { claimSlot } from './slots.js';
import { NixSession, nixString, type Reply, type SessionSpec, type Stop } from './nix-session.js';
import type { AttrResult, ShardFailure, ShardResult, ShardStats, ShardTask } from './types.js';

/** .drv files this thread has read since it last emptied its scratch drv store */
let readSincePrune = 0;

/** This thread's evaluators, one per target it has evaluated lately; the most recently used last. */
const sessions = new Map<string, NixSession>();

/**
 * The drv store directory this thread's Nix writes to: the slot this thread holds in the
 * coordinator's table (slot 0 is the configured one), so two live threads never write into, or
 * prune, one directory.
 */
export function slotStore(store: string, slotTable: SharedArrayBuffer): string {
  return slotStorePath(store, claimSlot(slotTable));
}

function sessionSpec(task: ShardTask): SessionSpec {
  return {
    nixpkgs: task.nixpkgs,
    system: task.system,
    config: task.config,
    configNix: task.configNix,
    overlays: task.overlays,
    exhaustive: task.exhaustive,
    store: slotStore(task.store, task.slotTable),
    scratch: task.scratch,
    evaluator: task.evaluator,
    timeoutMs: task.timeoutMs,
    memoryMb: task.memoryMb,
  };
}

/** What makes two shards' evaluations interchangeable: the same package set, target and store. */
function sessionKey(spec: SessionSpec): string {
  const { timeoutMs: _t, memoryMb: _m, ...what } = spec;
  return JSON.stringify(what);
}

/**
 * A running evaluator for this task's target: the one this thread already has, or a new one
 * (`fresh`: always a new one). Beyond `task.sessions` evaluators, the least recently used ends.
 */
async function sessionFor(task: ShardTask, stats: ShardStats, fresh: boolean): Promise<NixSession | ShardFailure> {
  const spec = sessionSpec(task);
  const key = sessionKey(spec);
  const had = sessions.get(key);
  sessions.delete(key);
  if (had && had.alive && !fresh) {
    sessions.set(key, had);
    return had;
  }
  had?.close();
  for (const [k, old] of sessions) {
    if (sessions.size < task.sessions) break;
    old.close();
    sessions.delete(k);
  }
  const session = new NixSession(spec);
  stats.nixRuns++;
  const t0 = Date.now();
  const started = await session.start();
  stats.loadMs += Date.now() - t0;
  if (!started.ok) {
    return { ok: false, code: ErrorCode.NIX_FAILED, message: `cannot load ${task.nixpkgs} for ${task.system}/${task.variant}: ${started.message}` };
  }
  sessions.set(key, session);
  return session;
}

/** Ends every evaluator of this thread (before its drv store is emptied). */
function closeSessions(): void {
  for (const s of sessions.values()) s.close();
  sessions.clear();
}

function toResult(path: string[], rec: Record<string, unknown>): AttrResult {
  switch (rec.s) {
    case 'drv':
      return { path, status: 'drv', drvPath: String(rec.d) };
    case 'set':
      return { path, status: 'set', recurse: rec.r === true, names: (rec.n as string[] | null) ?? null };
    case 'skipped':
      return { path, status: 'skipped', type: String(rec.t) };
    default:
      return { path, status: 'error', errorKind: 'catchable', error: rec.e === 'drvPath' ? 'drvPath' : 'value' };
  }
}

/** One request to the evaluator: an expression (over `A`, the shard's paths) for some of its paths. */
interface Unit {
  expr: string;
  /** indexes into the shard's paths */
  paths: number[];
}

/**
 * Asks every unit of this target's evaluator, until each has an answer: a reply, or the way the
 * evaluator stopped on it. A unit the evaluator was killed on for memory is asked again alone,
 * of a fresh evaluator (the memory may be its predecessors'); what passes the cap even so, or
 * the time cap, or kills the evaluator, is answered with that stop. A new evaluator takes up what
 * is left.
 */
async function askAll(
  task: ShardTask,
  stats: ShardStats,
  pathsFile: string,
  units: Unit[],
  answer: (u: Unit, r: Reply | Stop) => void,
): Promise<ShardFailure | null> {
  let queue = units;
  let alone = false;
  while (queue.length) {
    const session = await sessionFor(task, stats, alone);
    if ('ok' in session) return session;
    session.bind('A', `W.ask ${nixString(pathsFile)}`);
    const batch = alone ? queue.slice(0, 1) : queue;
    const t0 = Date.now();
    const { replies, stopped } = await session.ask(
      batch.map((u) => u.expr),
      (k, r) => answer(batch[k], r),
    );
    stats.evalMs += Date.now() - t0;
    stats.peakNixRssKb = Math.max(stats.peakNixRssKb, session.peakRssKb);
    queue = queue.slice(replies.length);
    alone = false;
    if (!stopped) continue;
    // killed for memory after answering others: the memory may be theirs
    if (stopped.reason === 'memory' && session.answered > 0) {
      stats.splits++;
      alone = true;
      continue;
    }
    stats.restarts++;
    answer(queue[0], stopped);
    queue = queue.slice(1);
  }
  return null;
}

/** Paths a request asks for at once; one failing uncatchably costs a second request for each of them. */
const BATCH = 32;

let pathsCounter = 0;

/**
 * Evaluates one shard on this thread's long-lived evaluator for the shard's target. Paths are
 * asked for in batches; a batch in which one fails uncatchably (the repl prints the error and
 * goes on) is asked again path by path, which costs little: what evaluated is remembered. Every
 * attribute gets a record; an uncatchable error is answered with Nix's message; a crash costs a
 * restart of the evaluator. `.drv` closures are read as the records come in, while Nix goes on
 * with the next attributes.
 */
export async function runShard(task: ShardTask, graph: DrvGraph): Promise<ShardResult | ShardFailure> {
  const stats: ShardStats = { nixRuns: 0, restarts: 0, splits: 0, evalMs: 0, loadMs: 0, readMs: 0, peakNixRssKb: 0 };
  const attrs: AttrResult[] = new Array<AttrResult>(task.paths.length);
  const storeRoot = slotStore(task.store, task.slotTable);
  const read: ReadClosure = { drvs: [], sources: [] };
  const pathsFile = join(task.scratch, `paths-${threadId}-${++pathsCounter}.json`);
  writeFileSync(pathsFile, JSON.stringify(task.paths));
  try {
    return await evaluateShard(task, graph, stats, attrs, storeRoot, read, pathsFile);
  } finally {
    rmSync(pathsFile, { force: true });
  }
}

/** The record of path `i`, with its .drv closure read. */
function recordOf(
  task: ShardTask,
  graph: DrvGraph,
  stats: ShardStats,
  read: ReadClosure,
  storeRoot: string,
  i: number,
  rec: Record<string, unknown>,
): AttrResult {
  const path = task.paths[i];
  try {
    const a = toResult(path, rec);
    if (a.status === 'drv') {
      // by the time Nix prints a drvPath, the .drv and its inputs are written
      const t0 = Date.now();
      readDrvClosure([a.drvPath!], storeRoot, task.mirrors, graph, read);
      stats.readMs += Date.now() - t0;
    }
    return a;
  } catch (err) {
    // fodder's own failure on this attribute (a .drv it cannot read or parse): recorded against
    // it, and the crawl goes on
    return { path, status: 'error', errorKind: 'internal', error: `fodder could not record it: ${(err as Error).message}` };
  }
}

async function evaluateShard(
  task: ShardTask,
  graph: DrvGraph,
  stats: ShardStats,
  attrs: AttrResult[],
  storeRoot: string,
  read: ReadClosure,
  pathsFile: string,
): Promise<ShardResult | ShardFailure> {
  const again: number[] = [];
  const batches: Unit[] = [];
  for (let from = 0; from < task.paths.length; from += BATCH) {
    const to = Math.min(task.paths.length, from + BATCH);
    batches.push({ expr: `A.batch ${from} ${to}`, paths: Array.from({ length: to - from }, (_, k) => from + k) });
  }
  const failed = await askAll(task, stats, pathsFile, batches, (u, r) => {
    if ('reason' in r || !r.ok) {
      again.push(...u.paths);
      return;
    }
    const recs = JSON.parse(r.value) as Record<string, unknown>[];
    u.paths.forEach((i, k) => {
      attrs[i] = recordOf(task, graph, stats, read, storeRoot, i, recs[k]);
    });
  });
  if (failed) return failed;
  const singles = again.map((i) => ({ expr: `A.one ${i}`, paths: [i] }));
  const failedAgain = await askAll(task, stats, pathsFile, singles, (u, r) => {
    const i = u.paths[0];
    const path = task.paths[i];
    if ('reason' in r) attrs[i] = { path, status: 'error', errorKind: r.reason === 'died' ? 'uncatchable' : r.reason, error: r.message };
    else if (!r.ok) attrs[i] = { path, status: 'error', errorKind: 'uncatchable', error: r.message };
    else attrs[i] = recordOf(task, graph, stats, read, storeRoot, i, JSON.parse(r.value) as Record<string, unknown>);
  });
  if (failedAgain) return failedAgain;
  if (process.env.FODDER_TIMINGS)
    process.stderr.write(
      `shard: thread ${threadId} ${task.paths.length} paths (${again.length} again) eval ${stats.evalMs} ms read ${stats.readMs} ms at ${Date.now() % 100000}\n`,
    );

  if (task.explainErrors) {
    // tryEval hides the message of what it caught: the same evaluator evaluates those again without it
    const caught = attrs.flatMap((a, i) => (a.status === 'error' && a.errorKind === 'catchable' ? [{ expr: `A.explain ${i}`, paths: [i] }] : []));
    const explained = await askAll(task, stats, pathsFile, caught, (u, r) => {
      const a = attrs[u.paths[0]];
      const what = a.error === 'drvPath' ? 'its drvPath' : 'its value';
      a.error = 'reason' in r ? r.message : r.ok ? `evaluating ${what} failed inside tryEval, but not when evaluated alone` : r.message;
    });
    if (explained) return explained;
  }

  const { drvs, sources } = read;
  if (task.pruneStoreAfter !== null) {
    readSincePrune += drvs.length;
    if (readSincePrune >= task.pruneStoreAfter) {
      // the evaluators believe what they wrote is still there: new ones start on the empty store
      closeSessions();
      rmSync(storeRoot, { recursive: true, force: true });
      if (process.env.FODDER_TIMINGS) process.stderr.write(`prune: thread ${threadId} pruned the scratch drv store after ${readSincePrune} .drv files\n`);
      readSincePrune = 0;
    }
  }

  // the shard's whole closure, new and already known parts: what its target saw
  const closure = graph.closure(attrs.flatMap((a) => (a.status === 'drv' ? [a.drvPath!] : [])));
  const fresh = new Set(drvs.map((d) => d.drvPath));
  const earlierDrvs = closure.drvs.filter((d) => !fresh.has(d));
  return { ok: true, attrs, drvs, sources, earlierDrvs, closureFods: closure.fods, stats };
}
