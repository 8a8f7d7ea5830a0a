/**
 * `archive`: fetchzip and fetchFromGitHub's archive form (of any nixpkgs version), and a tar
 * extraction into `$out` (TeX Live's fetcher). Downloads through the shared Network, unpacks as
 * nixpkgs' unpackFile (or the script's tar command) does (src/fetch/unpack.ts), places the tree
 * as that version's fetchzip does, NAR-hashes it and compares with the declared recursive hash.
 *
 * Exact only for a postFetch that is a recognised unpacking with nothing added
 * (src/graph/archive-script.ts), with no curl options or netrc: then a different hash means the
 * upstream archive changed (`broken-hash`). Everything fodder does not reproduce exactly
 * (a user's statements, permissions whose effect depends on the build machine, ...) is
 * `unverifiable`, never broken.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FodderError } from '../../errors.js';
import type { Fod } from '../../graph/types.js';
import type { HashAlgo } from '../../nix-formats/hash.js';
import { narHashThreaded as narHash } from '../../mirror/nar-hash-threaded.js';
import { archiveRecipe, type ArchiveRecipe } from '../../graph/archive-script.js';
import { unverifiable, type FetchContext, type FetcherPlugin, type FetchVerdict, type FodEnv } from '../types.js';
import { DEFAULT_UNPACK_LIMITS, placeUnpacked, unpackArchive, UnpackErrorCode, unpackMethodFor, type UnpackLimits, type UnpackMethod } from '../unpack.js';

export interface ArchiveFetcherOptions {
  limits?: UnpackLimits;
}

export function createArchiveFetcher(options: ArchiveFetcherOptions = {}): FetcherPlugin {
  const limits = options.limits ?? DEFAULT_UNPACK_LIMITS;

  const canFetch: FetcherPlugin['canFetch'] = (fod: Fod, env: FodEnv) => {
    if (fod.hash.mode !== 'recursive') return { ok: false, reason: 'flat hash: not an unpacked archive', code: 'not-exact' };
    const r = archiveRecipe(env);
    if (!r.ok) return { ok: false, reason: r.reason, code: r.custom ? 'custom-postFetch' : 'not-exact' };
    if (r.recipe.type === 'fetchzip' && !unpackMethodFor(r.recipe.shape.fileName)) {
      return { ok: false, reason: `unpackFile has no tool for '${r.recipe.shape.fileName}'`, code: 'not-exact' };
    }
    if ((env.curlOpts ?? '') !== '' || (env.curlOptsList ?? '') !== '' || (env.netrcPhase ?? '') !== '') {
      return { ok: false, reason: 'custom curl options or netrc', code: 'not-exact' };
    }
    if (fod.resolvedUrls.length === 0) return { ok: false, reason: 'no URL', code: 'not-exact' };
    return { ok: true };
  };

  return {
    id: 'archive',
    certainty: 'exact',
    canFetch,

    async fetch(fod: Fod, ctx: FetchContext): Promise<FetchVerdict> {
      const can = canFetch(fod, ctx.env);
      if (!can.ok) return unverifiable(can.code, can.reason);
      const recipe = (archiveRecipe(ctx.env) as { ok: true; recipe: ArchiveRecipe }).recipe;
      const download = join(ctx.workDir, 'download');
      const unpackDir = join(ctx.workDir, 'unpack');
      const out = join(ctx.workDir, 'out');
      let mismatch: Mismatch | null = null;
      let refusal: FetchVerdict | null = null;
      const failures: string[] = [];
      for (const [urlIndex, url] of fod.resolvedUrls.entries()) {
        if (ctx.signal.aborted) break;
        const r = await ctx.network.download({ url, urlIndex, dest: download }, ctx);
        if (!r.ok) {
          failures.push(`${url}: ${r.outcome}`);
          continue;
        }
        await rm(unpackDir, { recursive: true, force: true });
        await rm(out, { recursive: true, force: true });
        try {
          await unpackAs(recipe, download, unpackDir, out, { limits, signal: ctx.signal });
        } catch (e) {
          await rm(download, { force: true });
          await rm(unpackDir, { recursive: true, force: true });
          if (!(e instanceof FodderError) || !e.code.startsWith('UNPACK_')) throw e; // local failure: stop the run
          if (e.code === UnpackErrorCode.STRIP_ROOT) {
            // fetchzip fails the same way on this download: exact, so the source is broken
            mismatch ??= { url, urlIndex, actual: { algo: fod.hash.algo, hex: '' } };
            failures.push(`${url}: ${e.message}`);
            continue;
          }
          refusal ??= unverifiable(unpackReason(e.code), `${url}: ${e.message}`);
          continue;
        }
        await rm(download, { force: true });
        const h = await narHash(out, fod.hash.algo);
        if (h.hex === fod.hash.hex) {
          const nar = fod.hash.algo === 'sha256' ? h : await narHash(out, 'sha256');
          return { ok: true, url, urlIndex, output: { type: 'tree', path: out, narHash: nar.hex, narSize: nar.size } };
        }
        mismatch ??= { url, urlIndex, actual: { algo: fod.hash.algo, hex: h.hex } };
        failures.push(`${url}: unpacked tree has ${fod.hash.algo}:${h.hex}`);
        await rm(out, { recursive: true, force: true });
      }
      if (mismatch) {
        const what = mismatch.actual.hex
          ? `the unpacked tree has NAR ${mismatch.actual.algo}:${mismatch.actual.hex}, expected ${fod.hash.algo}:${fod.hash.hex}`
          : (failures.find((f) => f.startsWith(mismatch.url)) ?? 'fetchzip would fail');
        return { ok: false, verdict: 'broken-hash', mismatch: mismatch.actual.hex ? mismatch : null, message: `${mismatch.url}: ${what}` };
      }
      if (refusal) return refusal;
      return { ok: false, verdict: 'dead', mismatch: null, message: failures.join('; ') || 'no URL tried' };
    },
  };
}

/** The download unpacked at `out` as the recipe's script does it. */
async function unpackAs(
  recipe: ArchiveRecipe,
  download: string,
  unpackDir: string,
  out: string,
  opts: { limits: UnpackLimits; signal: AbortSignal },
): Promise<void> {
  if (recipe.type === 'tar') {
    await unpackArchive(download, out, { tool: 'tar' }, { ...opts, tar: recipe.shape });
    return;
  }
  const method: UnpackMethod = unpackMethodFor(recipe.shape.fileName)!;
  await unpackArchive(download, unpackDir, method, opts);
  await placeUnpacked(unpackDir, out, recipe.shape);
}

function unpackReason(code: string) {
  if (code === UnpackErrorCode.UNSAFE || code === UnpackErrorCode.TOO_LARGE) return 'unpack-refused' as const;
  if (code === UnpackErrorCode.UNSUPPORTED) return 'unpack-unsupported' as const;
  return 'unpack-failed' as const;
}

interface Mismatch {
  url: string;
  urlIndex: number;
  actual: { algo: HashAlgo; hex: string };
}

export const archiveFetcher = createArchiveFetcher();
