import { FOD_KINDS, isFodKind, type FodKind } from '../graph/types.js';
import { FodderError, ErrorCode } from '../errors.js';
import { archiveFetcher } from './plugins/archive.js';
import { gitFetcher } from './plugins/git.js';
import { urlFetcher } from './plugins/url.js';
import type { FetcherPlugin } from './types.js';

/**
 * The native plug-in of every kind fodder reproduces itself, one line each. A kind missing
 * here goes to the `nix` fallback when it is on, and is recorded `unverifiable` otherwise.
 */
export const FETCHERS: Partial<Record<FodKind, FetcherPlugin>> = { url: urlFetcher, archive: archiveFetcher, git: gitFetcher };

/** The plug-in for a kind, or null when no native plug-in exists for it. */
export function fetcherFor(kind: FodKind): FetcherPlugin | null {
  return FETCHERS[kind] ?? null;
}

/** What `--kind` selects: the FOD kinds to work on, and whether the nix fallback is on. */
export interface KindSelection {
  kinds: FodKind[];
  /** `nix` was named: FODs the native plug-ins cannot reproduce are realised with Nix */
  nix: boolean;
}

/** Every value `--kind` accepts. */
export const KIND_NAMES: readonly string[] = [...FOD_KINDS, 'nix'];

/**
 * Validates `--kind` values (or the config's `fetch.kinds`). An unknown kind is a usage error.
 * `nix` is not a FOD kind but the fallback: it switches the fallback on for the kinds named
 * with it; named alone (`--kind nix`) it selects every kind. Nothing named: every kind, no nix.
 */
export function parseKinds(values: readonly string[] | null | undefined): KindSelection {
  const out: FodKind[] = [];
  let nix = false;
  for (const v of values ?? []) {
    if (v === 'nix') {
      nix = true;
      continue;
    }
    if (!isFodKind(v)) {
      throw new FodderError(ErrorCode.USAGE, `unknown kind "${v}"; kinds are: ${FOD_KINDS.join(', ')}, and nix (the fallback that realises a FOD with Nix)`, {
        kind: v,
      });
    }
    if (!out.includes(v)) out.push(v);
  }
  return { kinds: out.length ? out : [...FOD_KINDS], nix };
}
