import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { readDrvClosure, type DrvGraph, type ReadClosure } from '../graph/closure.js';
import { slotStorePath } from '../graph/store-slots.js';
import { runWalker, type WalkerRun } from './nix-run.js';
import type { AttrResult, ShardFailure, ShardResult, ShardStats, ShardTask } from './types.js';

let specCounter = 0;
/** .drv files this thread has read since it last emptied its scratch drv store */
let readSincePrune = 0;

function writeSpec(task: ShardTask, paths: string[][], mode: 'walk' | 'explain'): string {
  const file = join(task.scratch, `spec-${threadId}-${++specCounter}.json`);
  writeFileSync(file, JSON.stringify({
    nixpkgs: task.nixpkgs, system: task.system, config: task.config, overlays: task.overlays,
    paths, mode, exhaustive: task.exhaustive,
  }));
  return file;
}

/**
 * The drv store directory this thread's Nix writes to: one per worker (slot 0 is the configured
 * one), so two Nix processes never write into one directory.
 */
export function slotStore(store: string, slots: number): string {
  const slot = slots > 1 ? Math.max(0, threadId - 1) % slots : 0;
  return slotStorePath(store, slot);
}


async function walkerRun(
  task: ShardTask, paths: string[][], mode: 'walk' | 'explain', onRecord?: (r: Record<string, unknown>) => void,
): Promise<WalkerRun> {
  const specFile = writeSpec(task, paths, mode);
  try {
    return await runWalker({
      walker: task.walker, specFile, configNix: task.configNix, store: slotStore(task.store, task.storeSlots),
      timeoutMs: task.timeoutMs, memoryMb: task.memoryMb, tmpDir: task.scratch, onRecord,
    });
  } finally {
    rmSync(specFile, { force: true });
  }
}

function toResult(path: string[], rec: Record<string, unknown>): AttrResult {
  switch (rec.s) {
    case 'drv': return { path, status: 'drv', drvPath: String(rec.d) };
    case 'set': return { path, status: 'set', recurse: rec.r === true, names: (rec.n as string[] | null) ?? null };
    case 'skipped': return { path, status: 'skipped', type: String(rec.t) };
    default: return { path, status: 'error', errorKind: 'catchable', error: rec.e === 'drvPath' ? 'drvPath' : 'value' };
  }
}

function died(run: WalkerRun): string {
  if (run.tail) return run.tail;
  if (run.signal) return `nix-instantiate was killed by ${run.signal}`;
  return `nix-instantiate exited with code ${run.exitCode}`;
}

/**
 * Evaluates one shard. Records stream from the walker one attribute at a time, so an
 * uncatchable error costs one restart: the culprit is the path after the last record. A run
 * that passes its time or memory cap is split in halves and retried; a single path that still
 * passes it is recorded as such.
 */
export async function runShard(task: ShardTask, graph: DrvGraph): Promise<ShardResult | ShardFailure> {
  const stats: ShardStats = { nixRuns: 0, restarts: 0, splits: 0, evalMs: 0, readMs: 0, peakNixRssKb: 0 };
  const results = new Map<number, AttrResult>();
  const index = new Map<string[], number>();
  task.paths.forEach((p, i) => index.set(p, i));

  // .drv files are read as their records stream in, while Nix evaluates the next attributes:
  // by the time Nix prints a drvPath, the .drv and its inputs are written
  const storeRoot = slotStore(task.store, task.storeSlots);
  const read: ReadClosure = { drvs: [], sources: [] };
  const onRecord = (rec: Record<string, unknown>) => {
    if (rec.s !== 'drv') return;
    const t0 = Date.now();
    readDrvClosure([String(rec.d)], storeRoot, task.mirrors, graph, read);
    stats.readMs += Date.now() - t0;
  };
  const queue: string[][][] = [task.paths];
  while (queue.length) {
    const paths = queue.shift()!;
    if (paths.length === 0) continue;
    const run = await walkerRun(task, paths, 'walk', onRecord);
    stats.nixRuns++;
    stats.evalMs += run.ms;
    stats.peakNixRssKb = Math.max(stats.peakNixRssKb, run.peakRssKb);
    if (process.env.FODDER_TIMINGS) process.stderr.write(`run: thread ${threadId} ${paths.length} paths ${run.ms} ms at ${Date.now() % 100000}\n`);
    if (!run.ready && !run.killedFor) {
      return { ok: false, code: 'NIX_FAILED', message: `cannot load ${task.nixpkgs} for ${task.system}/${task.variant}: ${died(run)}` };
    }
    run.records.forEach((rec, k) => results.set(index.get(paths[k])!, toResult(paths[k], rec)));
    const done = run.records.length;
    if (done >= paths.length) continue;
    const rest = paths.slice(done);
    if (run.killedFor) {
      if (rest.length === 1) {
        const limit = run.killedFor === 'timeout' ? `${task.timeoutMs} ms` : `${task.memoryMb} MiB`;
        results.set(index.get(rest[0])!, {
          path: rest[0], status: 'error', errorKind: run.killedFor,
          error: `evaluation passed the ${run.killedFor} cap (${limit}) on its own`,
        });
      } else {
        stats.splits++;
        const half = Math.ceil(rest.length / 2);
        queue.unshift(rest.slice(0, half), rest.slice(half));
      }
      continue;
    }
    // an uncatchable error: the culprit is the first path without a record
    stats.restarts++;
    results.set(index.get(rest[0])!, { path: rest[0], status: 'error', errorKind: 'uncatchable', error: died(run) });
    queue.unshift(rest.slice(1));
  }

  const attrs = task.paths.map((_, i) => results.get(i)!);
  if (task.explainErrors) await explainCaught(task, attrs, stats);
  const { drvs, sources } = read;
  if (task.pruneStoreAfter !== null) {
    readSincePrune += drvs.length;
    if (readSincePrune >= task.pruneStoreAfter) {
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

/** tryEval hides the message of what it caught: evaluate those paths again, alone, to hear Nix say it. */
async function explainCaught(task: ShardTask, attrs: AttrResult[], stats: ShardStats): Promise<void> {
  for (const a of attrs) {
    if (a.status !== 'error' || a.errorKind !== 'catchable') continue;
    const run = await walkerRun(task, [a.path], 'explain');
    stats.nixRuns++;
    stats.evalMs += run.ms;
    const what = a.error === 'drvPath' ? 'its drvPath' : 'its value';
    a.error = run.exitCode === 0
      ? `evaluating ${what} failed inside tryEval, but not when evaluated alone`
      : died(run);
  }
}
