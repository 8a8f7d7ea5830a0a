/**
 * Which plug-in fetches a FOD, and the rule that keeps fodder's own limits out of verdicts on
 * sources: a native plug-in that cannot reproduce a FOD exactly (it refuses it, or its attempt
 * ends `unverifiable`) hands it to the `nix` fallback when that is enabled; otherwise the FOD is
 * recorded `unverifiable` with the reason. `dead` and `broken-hash` from an exact native plug-in
 * are verdicts on the upstream source and stand (Nix would meet the same upstream).
 */
import type { Fod, FodKind } from '../graph/types.js';
import { unverifiable, type FetchContext, type FetcherPlugin, type FetchVerdict, type FodEnv, type UnverifiableVerdict } from './types.js';

export interface FetcherSet {
  /** native plug-ins by kind */
  native: Partial<Record<FodKind, FetcherPlugin>>;
  /** the `nix` fallback; null when disabled */
  nix: FetcherPlugin | null;
}

export type FetchPlan =
  /** `refusal`: why the native plug-in of the kind did not take it, when the fallback does instead */
  { plugin: FetcherPlugin; fallback: FetcherPlugin | null; refusal: UnverifiableVerdict | null } | { plugin: null; reason: UnverifiableVerdict };

/** The plug-in to try first for `fod` and the fallback after it, or why there is none. */
export function planFetch(fod: Fod, env: FodEnv, set: FetcherSet): FetchPlan {
  const native = set.native[fod.kind] ?? null;
  const nixOk = set.nix && set.nix.canFetch(fod, env).ok ? set.nix : null;
  if (native) {
    const can = native.canFetch(fod, env);
    if (can.ok) return { plugin: native, fallback: nixOk, refusal: null };
    const refusal = unverifiable(can.code, `${native.id}: ${can.reason}`);
    if (nixOk) return { plugin: nixOk, fallback: null, refusal };
    return { plugin: null, reason: refusal };
  }
  if (nixOk) return { plugin: nixOk, fallback: null, refusal: null };
  if (set.nix) {
    const why = set.nix.canFetch(fod, env);
    return { plugin: null, reason: unverifiable(why.ok ? 'no-fetcher' : why.code, why.ok ? `no fetcher for kind ${fod.kind}` : `nix: ${why.reason}`) };
  }
  return { plugin: null, reason: unverifiable('no-fetcher', `no native fetcher for kind ${fod.kind} and the nix fallback is off`) };
}

export interface PlannedVerdict {
  verdict: FetchVerdict;
  /** the plug-in whose verdict this is; null when none ran */
  by: FetcherPlugin['id'] | null;
  /** the native plug-in's verdict (or refusal) when the fallback replaced it */
  nativeVerdict: FetchVerdict | null;
}

/** Runs the plan: the first plug-in, then the fallback if the first could not judge the FOD. */
export async function fetchWithFallback(fod: Fod, ctx: FetchContext, set: FetcherSet): Promise<PlannedVerdict> {
  const plan = planFetch(fod, ctx.env, set);
  if (!plan.plugin) return { verdict: plan.reason, by: null, nativeVerdict: null };
  const first = await plan.plugin.fetch(fod, ctx);
  if (first.ok || first.verdict !== 'unverifiable' || !plan.fallback || ctx.signal.aborted) {
    return { verdict: first, by: plan.plugin.id, nativeVerdict: plan.refusal };
  }
  const second = await plan.fallback.fetch(fod, ctx);
  return { verdict: second, by: plan.fallback.id, nativeVerdict: first };
}
