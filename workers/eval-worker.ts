/** Thread entry point for the crawl: evaluates one shard (see src/eval/shard.ts). */
import { ErrorCode } from '../src/errors.js';
import { DrvGraph } from '../src/graph/closure.js';
import { runShard } from '../src/eval/shard.js';
import { warm } from '../src/eval/spawner.js';
import type { ShardTask, ShardResult, ShardFailure } from '../src/eval/types.js';

// the derivations this thread has read and returned (the coordinator stores each only once
// anyway): a shard's closure is known without reading those files again
const graph = new DrvGraph();

// the helper that starts this thread's Nix processes, started while the crawl's process is small
warm();

export default async function evalShard(task: ShardTask): Promise<ShardResult | ShardFailure> {
  try {
    return await runShard(task, graph);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return { ok: false, code: e.code ?? ErrorCode.WORKER_FAILED, message: e.message ?? String(err) };
  }
}
