import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import PQueue from 'p-queue';
import { Agent } from 'undici';
import { outcomeOfError } from './classify.js';
import { ftpTry } from './ftp.js';
import { httpHop, isLocal } from './http.js';
import { isTransient } from './outcome.js';
import { tryFailure, type TryResult } from './receive.js';
import type { HashPool } from '../mirror/hashing.js';
import type { DownloadFailed, DownloadOk, DownloadRequest, FetchContext, Network } from './types.js';
import { checkUrl, hostKey } from './url-policy.js';
import { fetchSchema } from '../config/schema.js';
import { networkSettings, type NetworkSettings } from '../config/settings.js';

/** The network's options: the settings (src/config/settings.ts) and the fixed parts of fodder's manners. */
export interface NetworkOptions extends NetworkSettings {
  /** backoff never grows past this */
  maxRetryDelayMs: number;
  maxRedirects: number;
  userAgent: string;
}

/** The network options for these settings. */
export function networkOptions(s: NetworkSettings): NetworkOptions {
  return {
    concurrency: s.concurrency,
    perHost: s.perHost,
    connectTimeoutMs: s.connectTimeoutMs,
    idleTimeoutMs: s.idleTimeoutMs,
    retries: s.retries,
    retryDelayMs: s.retryDelayMs,
    maxRetryDelayMs: 30_000,
    maxBytes: s.maxBytes,
    maxRedirects: 20,
    // what nixpkgs' fetchurl sends (curl/VERSION Nixpkgs/VERSION): some hosts serve browsers a page instead
    userAgent: 'curl/8.5.0 Nixpkgs/fodder-0.1',
  };
}

/** Every setting at its schema default (tests and benchmarks start from these). */
export const NETWORK_DEFAULTS: NetworkOptions = networkOptions(networkSettings(fetchSchema.parse({})));

export interface NetworkHandle extends Network {
  close(): Promise<void>;
}

/** Backoff before retry `n` (1-based): doubling from retryDelayMs, jittered ±50%, capped. */
export function backoffMs(o: Pick<NetworkOptions, 'retryDelayMs' | 'maxRetryDelayMs'>, n: number, retryAfterMs: number | null): number {
  const base = Math.min(o.maxRetryDelayMs, o.retryDelayMs * 2 ** (n - 1));
  const jittered = base * (0.5 + Math.random());
  return Math.min(o.maxRetryDelayMs, Math.max(jittered, retryAfterMs ?? 0));
}

export function createNetwork(options: NetworkOptions, hashPool: HashPool): NetworkHandle {
  const o = options;
  const dispatcher = new Agent({
    connect: { timeout: o.connectTimeoutMs },
    headersTimeout: o.idleTimeoutMs,
    bodyTimeout: o.idleTimeoutMs,
    keepAliveTimeout: 4000,
  });
  const global = new PQueue({ concurrency: o.concurrency });
  const hosts = new Map<string, PQueue>();
  const hostQueue = (host: string): PQueue => {
    let q = hosts.get(host);
    if (!q) {
      q = new PQueue({ concurrency: o.perHost });
      hosts.set(host, q);
    }
    return q;
  };
  /** a host slot first, then a global one: waiting for a busy host never holds a global slot */
  const limited = <T>(host: string, fn: () => Promise<T>): Promise<T> =>
    hostQueue(host).add(() => global.add(fn, { throwOnTimeout: true }), { throwOnTimeout: true });

  /** One try: follows redirects (checking each target's scheme), then HTTP or FTP. */
  async function tryOnce(start: URL, dest: string, ctx: Pick<FetchContext, 'onBytes' | 'onExpect' | 'signal'>): Promise<TryResult> {
    const env = { dest, hashPool, maxBytes: o.maxBytes, onBytes: ctx.onBytes, onExpect: ctx.onExpect, signal: ctx.signal };
    const seen = new Set<string>([start.href]);
    let url = start;
    let lastStatus: number | null = null;
    for (let hop = 0; ; hop++) {
      if (url.protocol === 'ftp:') {
        const r = await ftpTry(url, { ...env, connectTimeoutMs: o.connectTimeoutMs, idleTimeoutMs: o.idleTimeoutMs });
        return { ...r, httpStatus: r.httpStatus ?? lastStatus };
      }
      const r = await httpHop(url, { ...env, dispatcher, userAgent: o.userAgent });
      if (!('redirect' in r)) return r;
      lastStatus = r.status;
      const base = { httpStatus: r.status, finalUrl: url.href };
      const next = checkUrl(r.redirect, url.href);
      if (!next.ok) return tryFailure(next.outcome, next.message, base);
      if (seen.has(next.url.href)) return tryFailure('redirect-loop', `redirect loop: ${url.href} -> ${next.url.href} was visited before`, base);
      if (hop + 1 > o.maxRedirects) return tryFailure('redirect-loop', `more than ${o.maxRedirects} redirects`, base);
      seen.add(next.url.href);
      url = next.url;
    }
  }

  return {
    async download(req: DownloadRequest, ctx): Promise<DownloadOk | DownloadFailed> {
      const checked = checkUrl(req.url);
      let restartedAfterMismatch = false;
      for (let attempt = 1; ; attempt++) {
        const t0 = Date.now();
        let r: TryResult;
        if (!checked.ok) {
          r = tryFailure(checked.outcome, checked.message);
        } else {
          try {
            r = await limited(hostKey(req.url), () => tryOnce(checked.url, req.dest, ctx));
          } catch (err) {
            if (isLocal(err)) throw err;
            const c = outcomeOfError(err, false);
            r = tryFailure(c.outcome, c.message);
          }
        }
        if (ctx.signal.aborted) {
          // interrupted by the user: no verdict, nothing recorded, the partial file stays for a resume
          return { ok: false, outcome: r.outcome, message: 'interrupted', actual: null };
        }
        let outcome = r.outcome;
        let actual = null;
        if (outcome === 'ok' && req.check && r.digests) {
          actual = req.check(r.digests);
          if (actual) outcome = 'hash-mismatch';
        }
        ctx.recordAttempt({
          url: req.url,
          urlIndex: req.urlIndex,
          try: attempt,
          finalUrl: r.finalUrl,
          outcome,
          httpStatus: r.httpStatus,
          ftpReply: r.ftpReply,
          bytes: r.bytes,
          resumedFrom: r.resumedFrom,
          durationMs: Date.now() - t0,
          actual,
          message:
            outcome === 'hash-mismatch' && actual ? `got ${actual.algo}:${actual.hex}${r.resumedFrom ? ` (resumed at byte ${r.resumedFrom})` : ''}` : r.message,
        });
        if (outcome === 'ok' && r.digests) {
          return { ok: true, path: req.dest, size: r.size, digests: r.digests, finalUrl: r.finalUrl ?? req.url };
        }
        const transient = isTransient(outcome, r.httpStatus, r.ftpReply);
        if (!transient) rmSync(req.dest, { force: true }); // wrong or refused content is never resumed
        if (outcome === 'hash-mismatch' && r.resumedFrom && !restartedAfterMismatch) {
          // the bytes kept from an earlier try may be what is wrong: once more, from the start
          restartedAfterMismatch = true;
          continue;
        }
        if (!transient || attempt > o.retries || ctx.signal.aborted) {
          return { ok: false, outcome, message: r.message ?? outcome, actual };
        }
        await sleep(backoffMs(o, attempt, r.retryAfterMs), undefined, { signal: ctx.signal }).catch(() => undefined);
      }
    },
    async close() {
      await dispatcher.close().catch(() => undefined);
    },
  };
}
