import { readdirSync, readFileSync } from 'node:fs';
import { procStat } from '../db/owner.js';
import type { Piscina } from 'piscina';
import { FodderError, ErrorCode } from '../errors.js';
import { abandonCrawls } from '../db/crawl-store.js';
import type { Db } from '../db/open.js';
import { workerScript } from '../config/defaults.js';

/** This process's Nix spawner processes (workers/nix-spawner.ts) still running; [] without /proc. */
function spawners(): number[] {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  const script = workerScript('nix-spawner.js');
  return names
    .filter((name) => {
      const stat = /^\d+$/.test(name) ? procStat(name) : null;
      if (!stat || stat[0] === 'Z' || Number(stat[1]) !== process.pid) return false;
      try {
        return readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').includes(script);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const signalled = (pid: number, signal: NodeJS.Signals) => {
  try {
    process.kill(pid, signal);
  } catch {
    /* gone */
  }
};

/**
 * Ends the Nix spawner processes and the Nix processes they started, before the worker threads
 * go (a spawner whose thread is gone while it starts a Nix process dies of its closed channel,
 * with a stack trace). Frozen first, so none starts another while its children are listed.
 */
function killSpawners(): void {
  const parents = new Set(spawners());
  if (parents.size === 0) return;
  for (const pid of parents) signalled(pid, 'SIGSTOP');
  for (const name of readdirSync('/proc')) {
    const stat = /^\d+$/.test(name) ? procStat(name) : null;
    if (stat && parents.has(Number(stat[1]))) signalled(Number(name), 'SIGKILL');
  }
  for (const pid of parents) signalled(pid, 'SIGKILL');
}

/** Waits until the Nix spawner processes are gone, at most `ms`. */
async function spawnersEnded(ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (spawners().length > 0 && Date.now() < until) await sleep(20);
}

/**
 * How a crawl stops before its end: on `signal` (SIGINT, SIGTERM: its reason names the signal)
 * the Nix processes are killed and the worker pool is destroyed at once, which fails every
 * shard in flight; on that or any error the crawl is marked `interrupted` or `failed` (see
 * abandonCrawls), and every Nix process has ended before the scratch directory is removed.
 */
export function crawlStopper(signal: AbortSignal | undefined, pool: Piscina) {
  let destroyed: Promise<void> | null = null;
  const destroyPool = () => (destroyed ??= pool.destroy());
  const onAbort = () => {
    killSpawners();
    void destroyPool();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const interrupted = (ids: number[]) => {
    const which = ids.length ? `crawl ${ids.join(', ')} stopped by ${String(signal!.reason)}, marked interrupted` : `stopped by ${String(signal!.reason)}`;
    return new FodderError(ErrorCode.INTERRUPTED, `${which}; run the same command to resume it`, { signal: String(signal!.reason), crawls: ids });
  };
  return {
    destroyPool,
    /** throws INTERRUPTED when the signal came (before the database is touched) */
    check(): void {
      if (signal?.aborted) throw interrupted([]);
    },
    /** what to throw for `err`, once the crawl's row says how it ended */
    failed(err: unknown, db: Db | null): unknown {
      const ids = db ? abandonCrawls(db, signal?.aborted ? 'interrupted' : 'failed') : [];
      return signal?.aborted ? interrupted(ids) : err;
    },
    /** after a failure: the pool gone, then the Nix spawner processes and their Nix processes */
    async quiesce(): Promise<void> {
      killSpawners();
      await destroyPool();
      killSpawners(); // one a thread started again before it was gone
      await spawnersEnded();
    },
    dispose(): void {
      signal?.removeEventListener('abort', onAbort);
    },
  };
}
