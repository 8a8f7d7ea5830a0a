import { setMaxListeners } from 'node:events';
import { relative } from 'node:path';
import PQueue from 'p-queue';
import type { Db } from '../db/open.js';
import { FodderError } from '../errors.js';
import type { Fod, FodKind } from '../graph/types.js';
import { addFlatSource, CacheErrorCode, createBinaryCache, publishable, type BinaryCache } from '../mirror/binary-cache.js';
import { createHashedMirror, type HashedMirror } from '../mirror/hashed-mirror.js';
import { fetchWithFallback, planFetch, type FetcherSet } from './fallback.js';
import { createHashPool } from '../mirror/hashing.js';
import { createNetwork, type NetworkOptions } from './network.js';
import type { CacheSettings, NixFallbackRun } from './options.js';
import { storageError } from '../mirror/storage-error.js';
import { chooseCrawl } from '../db/crawls.js';
import { createClosureReader, createEnvReader, crawlStoreOf, fodsOfCrawl } from '../db/fods.js';
import { createNixFetcher, crawlDrvStores } from './plugins/nix.js';
import type { FetchProgress, FetchSummary, KindCounts } from './progress.js';
import { FETCHERS } from './registry.js';
import { createFetchStore, type FetchStore } from '../db/fetch-store.js';
import type { FetchContext, FetcherPlugin, FetchVerdict, FodEnv, Network, UnverifiableVerdict } from './types.js';

export interface FetchRunOptions {
  db: Db;
  /** the crawl whose sources are fetched (whatever its status); default: the latest finished one */
  crawl?: number;
  mirrorDir: string;
  kinds: FodKind[];
  retryFailed: boolean;
  network: NetworkOptions;
  /** the binary cache in `<mirrorDir>/cache` */
  cache: CacheSettings;
  /** the nix fallback; null: off */
  nix: NixFallbackRun | null;
  progress?: FetchProgress;
  signal?: AbortSignal;
  /** the native plug-ins by kind (default: the registry's FETCHERS) */
  fetchers?: Partial<Record<FodKind, FetcherPlugin>>;
  /** the fallback plug-in itself, when `nix` is on (default: made from `nix` and the crawl's stores) */
  nixFetcher?: FetcherPlugin;
}

/** A FOD to fetch, or (publishOnly) a file the hashed mirror holds and the binary cache lacks. */
interface Job {
  fod: Fod;
  publishOnly: boolean;
}

type EnvReader = (drvPath: string) => FodEnv;

/** The work dir of a source is named by its declared hash: the same content resumes the same partial file. */
const workKey = (fod: Fod) => `${fod.hash.algo}-${fod.hash.hex}`;

/** The drv store directories holding the crawl's .drv files, for the nix fallback. */
function drvStoresOf(db: Db, crawlId: number): string[] {
  const store = crawlStoreOf(db, crawlId);
  return store ? crawlDrvStores(store) : [];
}

/** What one run works with, shared by every job. */
interface RunState {
  run: number;
  mirror: HashedMirror;
  cache: BinaryCache;
  network: Network;
  store: FetchStore;
  set: FetcherSet;
  envOf: EnvReader;
  summary: FetchSummary;
  signal: AbortSignal;
  progress: FetchProgress | undefined;
}

/**
 * Fetches every source of the latest finished crawl that the mirror lacks with the plug-in that
 * reproduces it (or the nix fallback), storing flat files in the hashed mirror and every output
 * in the binary cache, and every try and verdict in the database. A source no plug-in can
 * reproduce is recorded `unverifiable` with the reason.
 */
export async function runFetch(o: FetchRunOptions): Promise<FetchSummary> {
  const t0 = Date.now();
  const crawl = chooseCrawl(o.db, o.crawl);
  const fods = fodsOfCrawl(o.db, crawl.id, o.kinds);
  const mirror = createHashedMirror(o.mirrorDir);
  mirror.lock();
  let store: FetchStore;
  let run: number;
  let cache: BinaryCache;
  const nixFallback = o.nix
    ? {
        plugin:
          o.nixFetcher ??
          createNixFetcher({
            store: o.nix.store,
            options: o.nix.options,
            timeoutMs: o.nix.timeoutMs,
            drvStores: drvStoresOf(o.db, crawl.id),
            closureOf: createClosureReader(o.db),
          }),
        jobs: o.nix.jobs,
      }
    : null;
  const pool = createHashPool();
  try {
    cache = createBinaryCache({ ...o.cache, mirrorDir: mirror.root, hashPool: pool });
    cache.removeLeftovers();
    store = createFetchStore(o.db);
    run = store.beginRun(crawl.id, mirror.root, {
      kinds: o.kinds,
      nix: nixFallback !== null,
      retryFailed: o.retryFailed,
      network: o.network,
      cache: { compression: o.cache.compression, flat: o.cache.flat, signedBy: cache.publicKey?.split(':')[0] ?? null },
    });
  } catch (err) {
    mirror.unlock();
    await pool.close();
    throw storageError(err, 'the binary cache') ?? err;
  }
  const summary: FetchSummary = {
    run,
    crawl: crawl.id,
    mirror: mirror.root,
    cache: cache.dir,
    kinds: o.kinds,
    nixFallback: nixFallback !== null,
    fods: fods.length,
    mirrored: 0,
    alreadyMirrored: 0,
    dead: 0,
    brokenHash: 0,
    unverifiable: {},
    mirroredBy: {},
    published: 0,
    byKind: {},
    skipped: { failedBefore: 0 },
    bytes: 0,
    durationMs: 0,
    outcomes: {},
  };
  for (const kind of o.kinds) countsOf(summary, kind); // every selected kind, in FOD_KINDS order
  const network = createNetwork(o.network, pool);
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // every request in flight listens to it
  const onOuterAbort = () => abort.abort();
  o.signal?.addEventListener('abort', onOuterAbort);
  const flushTimer = setInterval(() => {
    store.flush();
    void mirror.syncDirs().catch(() => undefined);
  }, 500);
  flushTimer.unref();
  let failure: unknown = null;
  try {
    const state: RunState = {
      run,
      mirror,
      cache,
      network,
      store,
      summary,
      signal: abort.signal,
      progress: o.progress,
      envOf: createEnvReader(o.db),
      set: fetcherSet(o.fetchers ?? FETCHERS, nixFallback, o.network.concurrency),
    };
    const jobs = selectJobs(fods, state, o.retryFailed);
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
        const mine = before.then(() => fetchOne(job, state));
        const tail = mine.catch(() => undefined);
        locks.set(key, tail);
        try {
          await mine;
        } finally {
          if (locks.get(key) === tail) locks.delete(key);
        }
      }
    };
    const workers = Array.from({ length: Math.min(window, jobs.length) }, () =>
      worker().catch((err) => {
        failure ??= err;
        abort.abort(); // a local problem (disk full, unwritable, a plug-in bug): stop everything
      }),
    );
    await Promise.all(workers);
    if (failure) throw failure;
  } catch (err) {
    failure ??= err;
  } finally {
    clearInterval(flushTimer);
    o.signal?.removeEventListener('abort', onOuterAbort);
    summary.durationMs = Date.now() - t0;
    try {
      store.finishRun(run, failure ? 'failed' : o.signal?.aborted ? 'interrupted' : 'done', summary);
    } catch {
      /* report the first error */
    }
    await mirror.syncDirs().catch(() => undefined);
    // a failure while closing never hides the one that stopped the run
    try {
      await network.close();
      await pool.close();
    } catch (err) {
      failure ??= err;
    }
    mirror.unlock();
  }
  if (failure) throw failure;
  o.progress?.finish(summary);
  return summary;
}

/**
 * The plug-ins of this run. Downloads are limited by the shared Network; what a plug-in does
 * outside it (git, unpacking, Nix builds) is limited here: the native ones to the run's
 * concurrency, the nix fallback to its own number of jobs.
 */
function fetcherSet(native: Partial<Record<FodKind, FetcherPlugin>>, nix: { plugin: FetcherPlugin; jobs: number } | null, concurrency: number): FetcherSet {
  const limited = (p: FetcherPlugin, n: number): FetcherPlugin => {
    const queue = new PQueue({ concurrency: n });
    return {
      id: p.id,
      certainty: p.certainty,
      canFetch: (fod, env) => p.canFetch(fod, env),
      fetch: (fod, ctx) => queue.add(() => p.fetch(fod, ctx)) as Promise<FetchVerdict>,
    };
  };
  const out: FetcherSet['native'] = {};
  for (const [kind, p] of Object.entries(native) as [FodKind, FetcherPlugin][]) out[kind] = p.id === 'url' ? p : limited(p, concurrency);
  return { native: out, nix: nix ? limited(nix.plugin, nix.jobs) : null };
}

const countsOf = (s: FetchSummary, kind: FodKind): KindCounts =>
  (s.byKind[kind] ??= { fods: 0, mirrored: 0, alreadyMirrored: 0, dead: 0, brokenHash: 0, unverifiable: 0, failedBefore: 0 });

/** Whether the mirror holds the FOD's content: a flat file in tarballs/, or the output in the binary cache. */
function isStored(fod: Fod, s: RunState): boolean {
  return fod.hash.mode === 'flat' ? s.mirror.has(fod.hash.algo, fod.hash.hex) : publishable(fod) && s.cache.has(fod);
}

/**
 * Decides what to do with each FOD: already stored (recorded when the database did not know),
 * no plug-in for it (recorded unverifiable with the reason), failed before (skipped unless
 * --retry-failed), or a job.
 */
function selectJobs(fods: Fod[], s: RunState, retryFailed: boolean): Job[] {
  const known = s.store.mirroredIn(s.mirror.root);
  const failedBefore = retryFailed ? new Set<string>() : s.store.lastFailed();
  const jobs: Job[] = [];
  for (const fod of fods) {
    const counts = countsOf(s.summary, fod.kind);
    counts.fods++;
    if (isStored(fod, s)) {
      s.summary.alreadyMirrored++;
      counts.alreadyMirrored++;
      if (!known.has(fod.drvPath)) recordMirrored(s, fod, null);
      // a file mirrored before the binary cache had its entry (publish it there too), or an entry lacking the configured key's signature (sign it)
      const state = publishable(fod) ? s.cache.state(fod) : 'complete';
      if ((state === 'absent' && fod.hash.mode === 'flat') || state === 'needs-signature') jobs.push({ fod, publishOnly: true });
      continue;
    }
    const plan = planFetch(fod, s.envOf(fod.drvPath), s.set);
    if (!plan.plugin) {
      recordVerdict(s, fod, plan.reason, null);
      continue;
    }
    if (fod.hash.mode === 'recursive' && !publishable(fod)) {
      const why: UnverifiableVerdict = {
        ok: false,
        verdict: 'unverifiable',
        reason: 'not-exact',
        mismatch: null,
        message: `${fod.outPath} does not follow from its hash and name: a binary cache cannot hold it`,
      };
      recordVerdict(s, fod, why, null);
      continue;
    }
    if (failedBefore.has(fod.drvPath)) {
      s.summary.skipped.failedBefore++;
      counts.failedBefore++;
      continue;
    }
    jobs.push({ fod, publishOnly: false });
  }
  return jobs;
}

/** Where the mirror holds a FOD: its file in tarballs/, else its narinfo in the binary cache. */
function recordMirrored(s: RunState, fod: Fod, from: { size: number; url: string; urlIndex: number } | null): void {
  const path = fod.hash.mode === 'flat' ? `tarballs/${fod.hash.algo}/${fod.hash.hex}` : relative(s.mirror.root, s.cache.narInfoPath(fod.outPath));
  s.store.mirrored(from ? s.run : null, s.mirror.root, {
    drvPath: fod.drvPath,
    path,
    algo: fod.hash.algo,
    hex: fod.hash.hex,
    size: from?.size ?? null,
    url: from?.url ?? null,
    urlIndex: from?.urlIndex ?? null,
  });
}

/** Records a verdict that is not ok (`by`: the plug-in whose verdict it is; null when none ran). */
function recordVerdict(s: RunState, fod: Fod, v: Exclude<FetchVerdict, { ok: true }>, by: string | null): void {
  const counts = countsOf(s.summary, fod.kind);
  if (v.verdict === 'unverifiable') {
    s.summary.unverifiable[v.reason] = (s.summary.unverifiable[v.reason] ?? 0) + 1;
    counts.unverifiable++;
  } else if (v.verdict === 'dead') {
    s.summary.dead++;
    counts.dead++;
  } else {
    s.summary.brokenHash++;
    counts.brokenHash++;
  }
  s.store.result(s.run, {
    drvPath: fod.drvPath,
    verdict: v.verdict,
    reason: v.verdict === 'unverifiable' ? v.reason : null,
    message: v.message,
    plugin: by,
    url: v.mismatch?.url ?? null,
    urlIndex: v.mismatch?.urlIndex ?? null,
    actual: v.mismatch?.actual ?? null,
  });
}

/** Publishes in the binary cache; a content mismatch there is a bug in a plug-in (it verified already) and stops the run. */
async function publish(s: RunState, what: () => Promise<{ existed: boolean }>, where: string): Promise<void> {
  try {
    const e = await what();
    if (!e.existed) s.summary.published++;
  } catch (err) {
    if (err instanceof FodderError && err.code === CacheErrorCode.HASH_MISMATCH) {
      throw new FodderError(err.code, `${err.message} (a verified output changed: a bug in fodder)`, err.fields);
    }
    throw storageError(err, where) ?? err;
  }
}

async function fetchOne(job: Job, s: RunState): Promise<void> {
  const { fod } = job;
  const { mirror, cache, summary } = s;
  if (s.signal.aborted) return;
  if (job.publishOnly || isStored(fod, s)) {
    if (!job.publishOnly) {
      // the same content, fetched for another FOD meanwhile
      summary.alreadyMirrored++;
      countsOf(summary, fod.kind).alreadyMirrored++;
      recordMirrored(s, fod, null);
    }
    if (fod.hash.mode === 'flat' && publishable(fod)) {
      await publish(s, () => addFlatSource(cache, fod, mirror.pathOf(fod.hash.algo, fod.hash.hex)), `publishing ${fod.name} in ${cache.dir}`);
    } else if (publishable(fod) && cache.state(fod) === 'needs-signature') {
      await publish(s, async () => (await cache.sign(fod)) ?? { existed: true }, `signing ${fod.name} in ${cache.dir}`);
    }
    s.progress?.done({ name: fod.name, verdict: 'ok', message: null });
    return;
  }
  const key = workKey(fod);
  const ctx: FetchContext = {
    workDir: mirror.workDir(key),
    network: s.network,
    signal: s.signal,
    env: s.envOf(fod.drvPath),
    recordAttempt(a) {
      summary.outcomes[a.outcome] = (summary.outcomes[a.outcome] ?? 0) + 1;
      s.store.attempt(s.run, fod.drvPath, a);
    },
    onBytes(delta) {
      summary.bytes += delta;
      s.progress?.bytes(delta);
    },
    onExpect(bytes) {
      s.progress?.expect(bytes);
    },
  };
  let planned;
  try {
    planned = await fetchWithFallback(fod, ctx, s.set);
  } catch (err) {
    await mirror.removeWorkDir(key); // a local failure: free what this source took
    throw storageError(err, `writing ${fod.name} into ${mirror.root}/tmp`) ?? err;
  }
  const { verdict, by } = planned;
  if (s.signal.aborted && !verdict.ok) return; // interrupted: no verdict, the partial file stays for a resume
  if (verdict.ok) {
    const out = verdict.output;
    try {
      if (out.type === 'file') {
        const stored = await mirror.admitFile(out.path, out.digests);
        if (publishable(fod)) await publish(s, () => addFlatSource(cache, fod, stored, out.digests), `publishing ${fod.name} in ${cache.dir}`);
      } else {
        await publish(s, () => cache.addOutput(fod, out), `publishing ${fod.name} in ${cache.dir}`);
      }
    } finally {
      await mirror.removeWorkDir(key);
    }
    summary.mirrored++;
    countsOf(summary, fod.kind).mirrored++;
    summary.mirroredBy[by ?? 'unknown'] = (summary.mirroredBy[by ?? 'unknown'] ?? 0) + 1;
    recordMirrored(s, fod, { size: out.type === 'file' ? out.size : out.narSize, url: verdict.url, urlIndex: verdict.urlIndex });
    s.store.result(s.run, { drvPath: fod.drvPath, verdict: 'ok', plugin: by, url: verdict.url, urlIndex: verdict.urlIndex, actual: null });
    s.progress?.done({ name: fod.name, verdict: 'ok', message: null });
    return;
  }
  await mirror.removeWorkDir(key);
  const first = planned.nativeVerdict;
  const message = first && !first.ok ? `${verdict.message}; before the fallback: ${first.message}` : verdict.message;
  recordVerdict(s, fod, { ...verdict, message }, by);
  s.progress?.done({ name: fod.name, verdict: verdict.verdict, message });
}
