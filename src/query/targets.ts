/**
 * The FODs of a target, with where each came from: a crawled attribute (from the database, for
 * one or several systems and variants) or an on-demand target (evaluated now, src/eval/on-demand.ts).
 * `fodder sources` answers with these; so may any command that needs the sources of a target.
 */
import { FodderError, ErrorCode } from '../errors.js';
import type { Db } from '../db/open.js';
import type { Fod } from '../graph/types.js';
import { nixErrorHeadline } from '../graph/nix-error.js';
import type { MemberFailure, OnDemandOptions, TargetSpec } from '../eval/on-demand.js';
import { chooseCrawl, finishedCrawlIds } from '../db/crawls.js';
import { sourcesOf, type SourcesAnswer } from './sources.js';
import { listFods } from './listings.js';

/** Where a source was found: a system and variant (null for a NixOS configuration or a flake), and the members that need it. */
export interface Provenance {
  system: string;
  variant: string | null;
  /** the members whose closure holds it ("" for the target itself, a list's index, a set's attribute name); only for on-demand targets */
  members?: string[];
}

/**
 * A source (one output path) with where it was found. `drvPaths`: every derivation among the
 * closures that produces it (each system has its own, and a package set may fetch the same file
 * with two fetchers, as nixpkgs' bootstrap does); the Fod fields are the first one's.
 */
export type SourceWithProvenance = Fod & { drvPaths: string[]; targets: Provenance[] };

/** The answer for an on-demand target (`--expr`, `--file`, `--nixos-config`, `--flake`). */
export interface TargetSourcesAnswer {
  /** the target as the command line gave it (`--expr "…"`) */
  target: string;
  kind: TargetSpec['kind'];
  systems: string[];
  /** the variants evaluated; empty for a NixOS configuration or a flake */
  variants: string[];
  /** the Nix that evaluated */
  nix: string;
  /** every member that evaluated to a derivation, per system and variant */
  members: { name: string; system: string; variant: string | null; drvPath: string }[];
  /** every member that did not, with Nix's message */
  failures: (MemberFailure & { system: string; variant: string | null })[];
  /** the union of the members' FODs, one per output path, the first system's record */
  sources: SourceWithProvenance[];
}

/** The answer for a crawled attribute asked for several systems or variants: the first's fields, and each's. */
export interface AttrSourcesAnswer extends Omit<SourcesAnswer, 'sources'> {
  targets: { system: string; variant: string; crawl: number; drvPath: string }[];
  sources: SourceWithProvenance[];
}

/** Merges FODs into `into` by output path (the same source on two systems has two drvPaths, one output). */
function addSources(into: Map<string, SourceWithProvenance>, fods: Fod[], where: Omit<Provenance, 'members'>, member?: string): void {
  for (const f of fods) {
    let s = into.get(f.outPath);
    if (!s) into.set(f.outPath, (s = { ...f, drvPaths: [], targets: [] }));
    if (!s.drvPaths.includes(f.drvPath)) s.drvPaths.push(f.drvPath);
    let p = s.targets.find((t) => t.system === where.system && t.variant === where.variant);
    if (!p) s.targets.push((p = member === undefined ? { ...where } : { ...where, members: [] }));
    if (member !== undefined && !p.members!.includes(member)) p.members!.push(member);
  }
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * The FODs of a crawled attribute for every system × variant asked (each must have been crawled),
 * with the systems and variants each was seen in. The first pair's record gives the answer's
 * `system`, `variant`, `crawl` and `drvPath`, as `sourcesOf` does for one.
 */
export function attrSources(db: Db, attr: string, o: { systems: string[]; variants: string[]; crawl?: number }): AttrSourcesAnswer {
  const systems = o.systems.length ? o.systems : [undefined];
  const variants = o.variants.length ? o.variants : [undefined];
  const answers = systems.flatMap((system) => variants.map((variant) => sourcesOf(db, attr, { system, variant, crawl: o.crawl })));
  const merged = new Map<string, SourceWithProvenance>();
  for (const a of answers) addSources(merged, a.sources, { system: a.system, variant: a.variant });
  const { sources: _first, ...head } = answers[0];
  return {
    ...head,
    targets: answers.map((a) => ({ system: a.system, variant: a.variant, crawl: a.crawl, drvPath: a.drvPath })),
    sources: [...merged.values()].sort(byName),
  };
}

/**
 * Evaluates an on-demand target for every system × variant of `options` and answers with its
 * members' FODs. The target failing as a whole on any of them, or yielding no derivation at all,
 * is an error (TARGET_FAILED) naming the target, with the first line of Nix's message (the whole
 * message in the error's `nix` field); members that fail are listed in `failures` and the others
 * answered.
 */
export async function targetSources(target: TargetSpec, options: OnDemandOptions): Promise<TargetSourcesAnswer> {
  // the evaluator is loaded only when a target is evaluated: not at every command's start
  const { evaluateTarget, targetLabel } = await import('../eval/on-demand.js');
  const label = targetLabel(target);
  const { nix, evals } = await evaluateTarget(target, options);
  const where = (e: { system: string; variant: string | null }) => (e.variant === null ? e.system : `${e.system}, ${e.variant}`);
  for (const e of evals) {
    if (e.error !== null) {
      throw new FodderError(ErrorCode.TARGET_FAILED, `${label} (${where(e)}) failed to evaluate: ${nixErrorHeadline(e.error)}`, {
        target: label,
        system: e.system,
        variant: e.variant,
        nix: e.error,
      });
    }
  }
  const members = evals.flatMap((e) => e.members.map((m) => ({ name: m.name, system: e.system, variant: e.variant, drvPath: m.drvPath })));
  const failures = evals.flatMap((e) => e.failures.map((f) => ({ ...f, name: f.name, system: e.system, variant: e.variant })));
  if (members.length === 0) {
    const first = failures[0];
    const why = first ? `: member ${JSON.stringify(first.name)} (${where(first)}): ${nixErrorHeadline(first.error)}` : ' (an empty list or set)';
    throw new FodderError(ErrorCode.TARGET_FAILED, `${label} yields no derivation${why}`, { target: label, failures });
  }
  const merged = new Map<string, SourceWithProvenance>();
  for (const e of evals) for (const m of e.members) addSources(merged, m.fods, { system: e.system, variant: e.variant }, m.name);
  const variantNames = target.kind === 'nixos' || target.kind === 'flake' ? [] : Object.keys(options.variants);
  return {
    target: label,
    kind: target.kind,
    systems: options.systems,
    variants: variantNames,
    nix,
    members,
    failures,
    sources: [...merged.values()].sort(byName),
  };
}

/**
 * What a target-taking command was asked (`fodder sources`, `--missing`, `bundle create`), as the
 * command line's options give it: read from the crawls in the database (ATTR for one or several
 * systems and variants, or, without ATTR, every FOD of the finished crawls or of crawl N, narrowed
 * like `fodder fods`), or evaluated now (`--expr`, `--file`, `--nixos-config`, `--flake`).
 */
export type TargetQuery =
  | { from: 'db'; attr?: string; systems: string[]; variants: string[]; crawl?: number; kind?: string; status?: string }
  | { from: 'eval'; spec: TargetSpec; options: OnDemandOptions };

export interface Target {
  /** says what the target is, for a header line */
  label: string;
  fods: Fod[];
  /** members of an on-demand target that failed to evaluate (the rest are answered) */
  failures: TargetSourcesAnswer['failures'];
}

/**
 * The FODs of a target, resolved in this one place for every command that needs them. `db` is
 * opened by the caller (read only) and used only for targets read from the crawls.
 */
export async function targetFods(db: () => Db, q: TargetQuery): Promise<Target> {
  if (q.from === 'eval') {
    const a = await targetSources(q.spec, q.options);
    return { label: a.target, fods: a.sources, failures: a.failures };
  }
  const d = db();
  if (q.attr !== undefined) {
    const a = attrSources(d, q.attr, q);
    const where = a.targets.map((t) => `${t.system}, ${t.variant}; crawl ${t.crawl}`).join('; ');
    return { label: `${a.attr} (${where})`, fods: a.sources, failures: [] };
  }
  let crawls: number[];
  if (q.crawl !== undefined) {
    crawls = [chooseCrawl(d, q.crawl).id];
  } else {
    crawls = finishedCrawlIds(d);
    if (crawls.length === 0) chooseCrawl(d); // says why there is nothing to read
  }
  if (crawls.length === 0) throw new FodderError(ErrorCode.DB_EMPTY, 'no crawl to read');
  if (q.systems.length > 1 || q.variants.length > 1) {
    throw new FodderError(ErrorCode.USAGE, 'without ATTR, name at most one --system and one --variant', { option: '--system' });
  }
  const narrowing = { system: q.systems[0], variant: q.variants[0], kind: q.kind, status: q.status };
  const narrowed = [narrowing.system && `system ${narrowing.system}`, narrowing.variant && `variant ${narrowing.variant}`, q.kind && `kind ${q.kind}`].filter(
    Boolean,
  );
  const label = `the FODs of crawl${crawls.length > 1 ? 's' : ''} ${crawls.join(', ')}${narrowed.length ? ` (${narrowed.join(', ')})` : ''}`;
  return { label, fods: listFods(d, crawls, narrowing), failures: [] };
}

/** One FOD per output path (several .drv files can share one), in the order given. */
export function distinctOutputs<T extends Fod>(fods: readonly T[]): T[] {
  const seen = new Set<string>();
  return fods.filter((f) => !seen.has(f.outPath) && (seen.add(f.outPath), true));
}
