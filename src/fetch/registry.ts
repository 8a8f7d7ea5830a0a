import { FOD_KINDS, type FodKind } from '../graph/types.js';
import { FodderError, ErrorCode } from '../errors.js';
import { urlFetcher } from './plugins/url.js';
import type { FetcherPlugin } from './types.js';

/** Every fetcher kind fodder can reproduce, one line each. A kind missing here is skipped as unsupported. */
export const FETCHERS: Partial<Record<FodKind, FetcherPlugin>> = {
  url: urlFetcher,
};

/** The plug-in for a kind, or null when no plug-in exists for it yet. */
export function fetcherFor(kind: FodKind): FetcherPlugin | null {
  return FETCHERS[kind] ?? null;
}

/** Validates --kind values: an unknown kind is an error; a known kind without a plug-in is fine. */
export function parseKinds(values: readonly string[] | undefined): FodKind[] {
  if (!values || values.length === 0) return [...FOD_KINDS];
  const out: FodKind[] = [];
  for (const v of values) {
    if (!(FOD_KINDS as readonly string[]).includes(v)) {
      throw new FodderError(ErrorCode.USAGE, `unknown kind "${v}"; kinds are: ${FOD_KINDS.join(', ')}`, { kind: v });
    }
    if (!out.includes(v as FodKind)) out.push(v as FodKind);
  }
  return out;
}
