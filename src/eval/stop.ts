import { readdirSync, readFileSync } from 'node:fs';
import type { Piscina } from 'piscina';
import { FodderError, ErrorCode } from '../errors.js';
import { abandonCrawls } from '../db/crawl-store.js';
import type { Db } from '../db/open.js';
import { workerScript } from '../config/defaults.js';

/** This process's Nix helpers still running (Linux: /proc; [] without it). */
function helpers(): number[] {
  let names: string[];
  try { names = readdirSync('/proc'); } catch { return []; }
  const script = workerScript('nix-spawner.js');
  const out: number[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) !== process.pid || state === 'Z') continue;
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').includes(script)) out.push(Number(name));
    } catch { /* gone meanwhile */ }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the Nix helpers have ended (each kills its Nix processes and exits once its
 * worker thread is gone), at most `ms`; then kills what remains.
 */
async function helpersEnded(ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (helpers().length > 0 && Date.now() < until) await sleep(20);
  for (const pid of helpers()) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

/**
 * How a crawl stops before its end: on `signal` (SIGINT, SIGTERM: its reason names the signal)
 * the worker pool is destroyed at once, which fails every shard in flight; on that or any error
 * the crawl is marked `interrupted` or `failed` (see abandonCrawls), and the Nix processes end
 * before the scratch directory is removed.
 */
export function crawlStopper(signal: AbortSignal | undefined, pool: Piscina) {
  let destroyed: Promise<void> | null = null;
  const destroyPool = () => (destroyed ??= pool.destroy());
  const onAbort = () => { void destroyPool(); };
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
    /** after a failure: the pool gone, then the Nix helpers and their Nix processes */
    async quiesce(): Promise<void> {
      await destroyPool();
      await helpersEnded();
    },
    dispose(): void { signal?.removeEventListener('abort', onAbort); },
  };
}
