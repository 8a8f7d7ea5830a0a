import { join } from 'node:path';
import type { Fod } from '../../graph/types.js';
import type { FetchContext, FetcherPlugin, FetchVerdict } from '../types.js';

/**
 * `url`: a flat file whose flat hash is declared (fetchurl without postFetch). Tries the
 * resolved URLs in order (mirror:// already expanded in the package set's order) until one
 * delivers content with the declared hash. This is exactly what Nix's fetchurl checks, so the
 * verdict is exact.
 */
export const urlFetcher: FetcherPlugin = {
  id: 'url',
  certainty: 'exact',

  canFetch(fod: Fod) {
    if (fod.hash.mode !== 'flat') {
      return { ok: false, code: 'not-exact', reason: 'recursive (NAR) hash: the file would have to be wrapped in a NAR' } as const;
    }
    if (fod.postFetch) return { ok: false, code: 'custom-postFetch', reason: 'has a postFetch: the hash is of its result, not of the download' } as const;
    if (fod.resolvedUrls.length === 0) return { ok: false, code: 'no-url', reason: 'no URL' } as const;
    return { ok: true } as const;
  },

  async fetch(fod: Fod, ctx: FetchContext): Promise<FetchVerdict> {
    const dest = join(ctx.workDir, 'download');
    const expected = fod.hash;
    let mismatch: Extract<FetchVerdict, { ok: false }>['mismatch'] = null;
    const failures: string[] = [];
    for (const [urlIndex, url] of fod.resolvedUrls.entries()) {
      if (ctx.signal.aborted) break;
      const r = await ctx.network.download(
        { url, urlIndex, dest, check: (d) => (d[expected.algo] === expected.hex ? null : { algo: expected.algo, hex: d[expected.algo] }) },
        ctx,
      );
      if (r.ok) {
        return { ok: true, url, urlIndex, output: { type: 'file', path: r.path, size: r.size, digests: r.digests } };
      }
      if (r.outcome === 'hash-mismatch' && r.actual && !mismatch) mismatch = { url, urlIndex, actual: r.actual };
      failures.push(`${url}: ${r.outcome}`);
    }
    return mismatch
      ? {
          ok: false,
          verdict: 'broken-hash',
          mismatch,
          message: `${mismatch.url} delivered ${mismatch.actual.algo}:${mismatch.actual.hex}, expected ${expected.algo}:${expected.hex}`,
        }
      : { ok: false, verdict: 'dead', mismatch: null, message: failures.join('; ') || 'no URL tried' };
  },
};
