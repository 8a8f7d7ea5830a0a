import { setMaxListeners } from 'node:events';
import type { Db } from '../db/open.js';
import type { Fod, FodKind } from '../graph/types.js';
import { createHashedMirror, type HashedMirror } from '../mirror/hashed-mirror.js';
import { createHashPool } from './hashing.js';
import { createNetwork, type NetworkOptions } from './network.js';
import { storageError, type Outcome } from './outcome.js';
import { createEnvReader, fodsOfCrawl, latestCrawl } from './plan.js';
import type { FetchProgress } from './progress.js';
import { FETCHERS } from './registry.js';
import { createFetchStore, type FetchStore } from './store.js';
import type { FetchContext, FetcherPlugin, FodEnv, Network } from './types.js';

export interface FetchRunOptions {
  db: Db;
  mirrorDir: string;
  kinds: FodKind[];
  retryFailed: boolean;
  network: NetworkOptions;
  progress?: FetchProgress;
  signal?: AbortSignal;
  /** the plug-ins by kind (default: the registry's FETCHERS) */
  fetchers?: Partial<Record<FodKind, FetcherPlugin>>;
}

export interface FetchSummary {
  run: number;
  crawl: number;
  mirror: string;
  /** FODs of the selected kinds in the crawl */
  fods: number;
  /** newly stored by this run */
  mirrored: number;
  /** directory trees verified but not stored: the binary cache is not wired into fetch yet */
  treesNotStored: number;
  /** found in the mirror already: not downloaded */
  alreadyMirrored: number;
  dead: number;
  brokenHash: number;
  /** tried, but fodder could not judge them (by reason): not a verdict on the source */
  unverifiable: Record<string, number>;
  skipped: {
    /** kinds with no fetcher plug-in yet */
    unsupported: Record<string, number>;
    /** in a supported kind but out of its plug-in's reach, by reason */
    notFetchable: Record<string, number>;
    /** failed in an earlier run (use --retry-failed) */
    failedBefore: number;
  };
  bytes: number;
  durationMs: number;
  /** every try's outcome, counted */
  outcomes: Partial<Record<Outcome, number>>;
}

interface Job { fod: Fod; plugin: FetcherPlugin }

type EnvReader = (drvPath: string) => FodEnv;

/** The work dir of a source is named by its declared hash: the same content resumes the same partial file. */
const workKey = (fod: Fod) => `${fod.hash.algo}-${fod.hash.hex}`;

/**
 * Fetches every source of the latest crawl that a plug-in can reproduce and the mirror lacks,
 * storing verified content in the mirror and every try in the database.
 */
export async function runFetch(o: FetchRunOptions): Promise<FetchSummary> {
  const t0 = Date.now();
  const crawl = latestCrawl(o.db);
  const fods = fodsOfCrawl(o.db, crawl.id, o.kinds);
  const mirror = createHashedMirror(o.mirrorDir);
  mirror.lock();
  let store: FetchStore;
  let run: number;
  try {
    store = createFetchStore(o.db);
    run = store.beginRun(crawl.id, mirror.root, { kinds: o.kinds, retryFailed: o.retryFailed, network: o.network });
  } catch (err) {
    mirror.unlock();
    throw err;
  }
  const summary: FetchSummary = {
    run, crawl: crawl.id, mirror: mirror.root, fods: fods.length, mirrored: 0, treesNotStored: 0, alreadyMirrored: 0,
    dead: 0, brokenHash: 0, unverifiable: {},
    skipped: { unsupported: {}, notFetchable: {}, failedBefore: 0 }, bytes: 0, durationMs: 0, outcomes: {},
  };
  const pool = createHashPool();
  const network = createNetwork(o.network, pool);
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // every request in flight listens to it
  const onOuterAbort = () => abort.abort();
  o.signal?.addEventListener('abort', onOuterAbort);
  const flushTimer = setInterval(() => { store.flush(); void mirror.syncDirs().catch(() => undefined); }, 500);
  flushTimer.unref();
  let failure: unknown = null;
  try {
    const envOf = createEnvReader(o.db);
    const jobs = selectJobs(fods, o.fetchers ?? FETCHERS, envOf, mirror, store, o.retryFailed, summary, run);
    store.flush();
    o.progress?.start({ run, crawl: crawl.id, queued: jobs.length, skipped: fods.length - jobs.length });
    const window = Math.max(64, o.network.concurrency * 4);
    const locks = new Map<string, Promise<void>>();
    let next = 0;
    const worker = async () => {
      while (!abort.signal.aborted && next < jobs.length) {
        const job = jobs[next++];
        // sources with the same hash are one download: serialise them, the second finds it stored
        const key = workKey(job.fod);
        const before = locks.get(key) ?? Promise.resolve();
        const mine = before.then(() => fetchOne(job, envOf, mirror, network, store, run, summary, abort.signal, o.progress));
        const tail = mine.catch(() => undefined);
        locks.set(key, tail);
        try { await mine; } finally { if (locks.get(key) === tail) locks.delete(key); }
      }
    };
    const workers = Array.from({ length: Math.min(window, jobs.length) }, () => worker().catch((err) => {
      failure ??= err;
      abort.abort(); // a local problem (disk full, unwritable): stop everything
    }));
    await Promise.all(workers);
    if (failure) throw failure;
  } catch (err) {
    failure ??= err;
  } finally {
    clearInterval(flushTimer);
    o.signal?.removeEventListener('abort', onOuterAbort);
    summary.durationMs = Date.now() - t0;
    try { store.finishRun(run, failure ? 'failed' : o.signal?.aborted ? 'interrupted' : 'done', summary); } catch { /* report the first error */ }
    await mirror.syncDirs().catch(() => undefined);
    await network.close();
    await pool.close();
    mirror.unlock();
  }
  if (failure) throw failure;
  o.progress?.finish(summary);
  return summary;
}

/** Decides what to do with each FOD; records the already-mirrored ones the database did not know. */
function selectJobs(
  fods: Fod[], fetchers: Partial<Record<FodKind, FetcherPlugin>>, envOf: EnvReader, mirror: HashedMirror, store: FetchStore,
  retryFailed: boolean, summary: FetchSummary, run: number,
): Job[] {
  const known = store.mirroredIn(mirror.root);
  const failedBefore = retryFailed ? new Set<string>() : store.lastFailed();
  const jobs: Job[] = [];
  for (const fod of fods) {
    const plugin = fetchers[fod.kind];
    if (!plugin) { summary.skipped.unsupported[fod.kind] = (summary.skipped.unsupported[fod.kind] ?? 0) + 1; continue; }
    const can = plugin.canFetch(fod, envOf(fod.drvPath));
    if (!can.ok) { summary.skipped.notFetchable[can.reason] = (summary.skipped.notFetchable[can.reason] ?? 0) + 1; continue; }
    if (fod.hash.mode === 'flat' && mirror.has(fod.hash.algo, fod.hash.hex)) {
      summary.alreadyMirrored++;
      if (!known.has(fod.drvPath)) recordMirrored(store, run, mirror, fod, null, null, null);
      continue;
    }
    if (failedBefore.has(fod.drvPath)) { summary.skipped.failedBefore++; continue; }
    jobs.push({ fod, plugin });
  }
  return jobs;
}

function recordMirrored(store: FetchStore, run: number | null, mirror: HashedMirror, fod: Fod, size: number | null, url: string | null, urlIndex: number | null): void {
  store.mirrored(run, mirror.root, {
    drvPath: fod.drvPath, path: `tarballs/${fod.hash.algo}/${fod.hash.hex}`, algo: fod.hash.algo, hex: fod.hash.hex, size, url, urlIndex,
  });
}

async function fetchOne(
  job: Job, envOf: EnvReader, mirror: HashedMirror, network: Network, store: FetchStore, run: number, summary: FetchSummary,
  signal: AbortSignal, progress: FetchProgress | undefined,
): Promise<void> {
  const { fod, plugin } = job;
  if (signal.aborted) return;
  if (fod.hash.mode === 'flat' && mirror.has(fod.hash.algo, fod.hash.hex)) {
    summary.alreadyMirrored++;
    recordMirrored(store, run, mirror, fod, null, null, null);
    return;
  }
  const key = workKey(fod);
  const ctx: FetchContext = {
    workDir: mirror.workDir(key),
    network,
    signal,
    env: envOf(fod.drvPath),
    recordAttempt(a) {
      summary.outcomes[a.outcome] = (summary.outcomes[a.outcome] ?? 0) + 1;
      store.attempt(run, fod.drvPath, a);
    },
    onBytes(delta) { summary.bytes += delta; progress?.bytes(delta); },
    onExpect(bytes) { progress?.expect(bytes); },
  };
  let verdict;
  try {
    verdict = await plugin.fetch(fod, ctx);
  } catch (err) {
    mirror.removeWorkDir(key); // a local failure: free what this source took
    throw storageError(err, `writing ${fod.name} into ${mirror.root}/tmp`) ?? err;
  }
  if (signal.aborted && !verdict.ok) return; // interrupted: no verdict, the partial file stays for a resume
  if (verdict.ok) {
    if (verdict.output.type !== 'file') {
      // verified, but only the binary cache can hold a tree, and fetch does not write it yet
      mirror.removeWorkDir(key);
      summary.treesNotStored++;
      store.result(run, { drvPath: fod.drvPath, verdict: 'ok', plugin: plugin.id, message: 'tree verified, not stored', url: verdict.url, urlIndex: verdict.urlIndex, actual: null });
      progress?.done({ name: fod.name, verdict: 'ok', message: null });
      return;
    }
    await mirror.admitFile(verdict.output.path, verdict.output.digests);
    mirror.removeWorkDir(key);
    summary.mirrored++;
    recordMirrored(store, run, mirror, fod, verdict.output.size, verdict.url, verdict.urlIndex);
    store.result(run, { drvPath: fod.drvPath, verdict: 'ok', plugin: plugin.id, url: verdict.url, urlIndex: verdict.urlIndex, actual: null });
    progress?.done({ name: fod.name, verdict: 'ok', message: null });
    return;
  }
  mirror.removeWorkDir(key);
  if (verdict.verdict === 'unverifiable') {
    summary.unverifiable[verdict.reason] = (summary.unverifiable[verdict.reason] ?? 0) + 1;
    store.result(run, {
      drvPath: fod.drvPath, verdict: 'unverifiable', reason: verdict.reason, message: verdict.message, plugin: plugin.id,
      url: null, urlIndex: null, actual: null,
    });
    progress?.done({ name: fod.name, verdict: verdict.verdict, message: verdict.message });
    return;
  }
  if (verdict.verdict === 'dead') summary.dead++; else summary.brokenHash++;
  store.result(run, {
    drvPath: fod.drvPath, verdict: verdict.verdict, message: verdict.message, plugin: plugin.id,
    url: verdict.mismatch?.url ?? null, urlIndex: verdict.mismatch?.urlIndex ?? null, actual: verdict.mismatch?.actual ?? null,
  });
  progress?.done({ name: fod.name, verdict: verdict.verdict, message: verdict.message });
}
