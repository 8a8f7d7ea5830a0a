/**
 * On-demand targets: a Nix expression, a file, a NixOS configuration or a flake's attribute,
 * evaluated by the crawl's evaluator (nix/evaluator.nix in a long-lived `nix repl`,
 * nix-session.ts) for each system and variant asked, and their `.drv` closures read and
 * classified by the crawl's reader (graph/closure.ts, graph/fod.ts). Nothing is written to the
 * database: the answer is the members' FODs.
 *
 * A target yields a derivation, a list or a set of them (one level: a member that is itself a
 * set is not descended into). Each member is `tryEval`'d as the crawl records an attribute: a
 * member that fails is a failure of that member (with Nix's message), and the others are
 * answered; the target itself failing (or yielding no derivation, list or set) is an error of
 * the whole evaluation, said by the caller.
 *
 * Nix writes the .drv files into a chroot store in a scratch directory (removed at the end), not
 * a binary-cache directory as the crawl does: a flake is copied into the store and read back,
 * which Nix cannot do from a binary-cache store.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import PQueue from 'p-queue';
import { FodderError, ErrorCode } from '../errors.js';
import { packageRoot } from '../config/defaults.js';
import type { VariantConfig } from '../config/schema.js';
import { DrvGraph, readDrvClosure, type ReadClosure } from '../graph/closure.js';
import type { Fod } from '../graph/types.js';
import { parseAttrPath } from './attr-path.js';
import { ensureNix, readMirrors } from './nix-env.js';
import { NIX_ENV, cleanNixMessage } from './nix-run.js';
import { nixErrorHeadline } from '../graph/nix-error.js';
import { runProcess } from '../process.js';
import { NixSession, nixString, type Reply, type Stop } from './nix-session.js';
import { makeScratch, removeTree } from './scratch.js';

export type TargetSpec =
  { kind: 'expr'; expr: string } | { kind: 'file'; file: string } | { kind: 'nixos'; configuration: string } | { kind: 'flake'; ref: string; attr: string };

export interface OnDemandOptions {
  /** the package set: `pkgs` of an expression or file; for a NixOS configuration, `PATH/nixos` is imported */
  nixpkgs: string;
  overlays: string[];
  systems: string[];
  /** the config variants, by name; ignored by NixOS configurations and flakes (their variant is null) */
  variants: Record<string, VariantConfig>;
  /** the longest one request to the evaluator may take */
  timeoutMs: number;
  memoryMb: number;
  signal?: AbortSignal;
}

/** A member of a target that is a derivation, and the FODs of its .drv closure. */
export interface MemberFods {
  /** "" for the target itself; a list's index or a set's attribute name */
  name: string;
  drvPath: string;
  fods: Fod[];
}

/** A member that did not evaluate to a derivation. */
export interface MemberFailure {
  name: string;
  /** as the crawl's attribute records, and `not-derivation` for a member of another type */
  errorKind: 'catchable' | 'uncatchable' | 'timeout' | 'memory' | 'internal' | 'not-derivation';
  error: string;
}

/** What a target gave for one system and variant. */
export interface TargetEval {
  system: string;
  /** null: a NixOS configuration or a flake, which no config variant applies to */
  variant: string | null;
  members: MemberFods[];
  failures: MemberFailure[];
  /** the target itself failed (Nix's message), or yields no derivation, list or set of them */
  error: string | null;
}

export interface OnDemandResult {
  /** the Nix that evaluated (`builtins.nixVersion`) */
  nix: string;
  evals: TargetEval[];
}

/** How a target is named in messages: the option that gave it. */
export function targetLabel(t: TargetSpec): string {
  switch (t.kind) {
    case 'expr':
      return `--expr ${JSON.stringify(t.expr)}`;
    case 'file':
      return `--file ${t.file}`;
    case 'nixos':
      return `--nixos-config ${t.configuration}`;
    case 'flake':
      return `--flake ${t.ref}#${t.attr}`;
  }
}

const FLAKE_ARGS = ['--extra-experimental-features', 'nix-command flakes', '--offline'];

/**
 * A local flake, ready for `builtins.getFlake`, which never writes a lock file: a copy of its
 * directory in the scratch directory, locked there (`nix flake lock`, offline: its inputs must be
 * local paths or already locked), so the user's directory is not written to. A flake URL
 * (`github:`, `git+https:`, ...) is given as it is.
 */
async function preparedFlake(ref: string, scratch: string, store: string, signal?: AbortSignal): Promise<string> {
  if (/^[a-z][a-z0-9+.-]*:/i.test(ref) && !ref.startsWith('path:')) return ref;
  const dir = resolve(ref.replace(/^path:/, ''));
  const copy = join(scratch, 'flake');
  cpSync(dir, copy, { recursive: true });
  const r = await runProcess('nix', [...FLAKE_ARGS, 'flake', 'lock', '--store', store, `path:${copy}`], { env: { ...process.env, ...NIX_ENV }, signal });
  if (r.code !== 0) {
    const said = cleanNixMessage(r.stderr);
    throw new FodderError(ErrorCode.TARGET_FAILED, `--flake ${ref}: cannot lock it: ${said ? nixErrorHeadline(said) : `nix flake lock failed (${r.code})`}`, {
      nix: said,
    });
  }
  return `path:${copy}`;
}

/** The Nix file the evaluator's `target` imports: a function of `{ pkgs, system }` yielding the target. */
function targetFile(t: TargetSpec, nixpkgs: string, flake: string | null): string {
  switch (t.kind) {
    case 'expr':
      return `{ pkgs, system }:\n(\n${t.expr}\n)\n`;
    case 'file':
      // a file whose value is a function is called with the arguments it names (all, for `x: ...`)
      return `scope: let v = import ${nixString(resolve(t.file))}; in
  if builtins.isFunction v then v (let a = builtins.functionArgs v; in if a == { } then scope else builtins.intersectAttrs a scope) else v\n`;
    case 'nixos':
      return `{ pkgs, system }: (import ${nixString(join(nixpkgs, 'nixos'))} {
  configuration = ${nixString(resolve(t.configuration))};
  inherit system;
}).config.system.build.toplevel\n`;
    case 'flake':
      return `{ pkgs, system }:
if !(builtins ? getFlake) then throw "Nix \${builtins.nixVersion} has no flakes (builtins.getFlake): use Nix 2.4 or later" else
let
  flake = builtins.getFlake ${nixString(flake!)};
  path = builtins.fromJSON ${nixString(JSON.stringify(parseAttrPath(t.attr)))};
  has = v: p: p == [ ] || (builtins.isAttrs v && v ? \${builtins.head p} && has v.\${builtins.head p} (builtins.tail p));
  get = builtins.foldl' (v: n: v.\${n});
  # as \`nix build REF#ATTR\` looks it up
  found = builtins.filter (has flake) [ ([ "packages" system ] ++ path) ([ "legacyPackages" system ] ++ path) path ];
in
if found == [ ] then throw ${nixString(`flake ${t.ref} has no attribute ${t.attr} (nor packages.<system>.${t.attr}, legacyPackages.<system>.${t.attr})`)}
else get flake (builtins.head found)\n`;
  }
}

let fileCounter = 0;

/**
 * Evaluates one target for every system × variant asked (two at a time) and returns, for each,
 * its members' FODs and failures. Nix missing or too old, and a package set that does not load
 * for a system, are errors; so is a target that fails as a whole (TARGET_FAILED, with the first
 * line of Nix's message).
 */
export async function evaluateTarget(target: TargetSpec, options: OnDemandOptions): Promise<OnDemandResult> {
  const scratch = makeScratch(0);
  const store = join(scratch, 'store');
  mkdirSync(store);
  try {
    const [nix, mirrors] = await Promise.all([ensureNix(options.nixpkgs, null, options.signal), readMirrors(options.nixpkgs, null, options.signal)]);
    const noVariant = target.kind === 'nixos' || target.kind === 'flake';
    const variants: [string | null, VariantConfig][] = noVariant ? [[null, { config: {}, nix: null }]] : Object.entries(options.variants);
    const jobs = options.systems.flatMap((system) => variants.map(([variant, v]) => ({ system, variant, v })));
    const file = join(scratch, `target-${++fileCounter}.nix`);
    const flake = target.kind === 'flake' ? await preparedFlake(target.ref, scratch, store, options.signal) : null;
    writeFileSync(file, targetFile(target, options.nixpkgs, flake));
    const graph = new DrvGraph();
    const nodes = new Map<string, Fod>();
    const queue = new PQueue({ concurrency: 2 });
    const evals = await Promise.all(
      jobs.map((j) =>
        queue.add(async () => {
          const session = () =>
            new NixSession({
              nixpkgs: options.nixpkgs,
              system: j.system,
              config: j.v.config,
              configNix: j.v.nix,
              overlays: options.overlays,
              exhaustive: false,
              store,
              chroot: true,
              features: target.kind === 'flake' ? ['flakes'] : [],
              offline: target.kind === 'flake',
              scratch,
              evaluator: join(packageRoot(), 'nix', 'evaluator.nix'),
              timeoutMs: options.timeoutMs,
              memoryMb: options.memoryMb,
            });
          const read = (drvPath: string): Fod[] => {
            const into: ReadClosure = { drvs: [], sources: [] };
            readDrvClosure([drvPath], { chroot: store }, mirrors, graph, into);
            for (const n of into.drvs) if (n.fod) nodes.set(n.drvPath, n.fod);
            return graph.closure([drvPath]).fods.map((f) => nodes.get(f)!);
          };
          return evaluateOn(session, file, read, { system: j.system, variant: j.variant }, options.nixpkgs, options.signal);
        }),
      ),
    );
    return { nix: nix.version, evals: evals as TargetEval[] };
  } finally {
    await removeTree(scratch);
  }
}

type Record_ = { m: string; s: string; d?: string; t?: string; e?: string };

/** One system and variant of a target, on an evaluator of its own (a new one after a crash or a kill). */
async function evaluateOn(
  newSession: () => NixSession,
  file: string,
  read: (drvPath: string) => Fod[],
  at: { system: string; variant: string | null },
  nixpkgs: string,
  signal?: AbortSignal,
): Promise<TargetEval> {
  const out: TargetEval = { ...at, members: [], failures: [], error: null };
  let current: NixSession | null = null;
  const onAbort = () => current?.close();
  signal?.addEventListener('abort', onAbort);
  const open = async (): Promise<NixSession> => {
    current?.close();
    const s = newSession();
    current = s;
    const started = await s.start();
    if (signal?.aborted) throw new FodderError(ErrorCode.INTERRUPTED, `stopped by ${String(signal.reason)}`, {});
    if (!started.ok) {
      const where = at.variant === null ? at.system : `${at.system}/${at.variant}`;
      throw new FodderError(ErrorCode.NIX_FAILED, `cannot load ${nixpkgs} for ${where}: ${started.message}`, { nixpkgs, ...at });
    }
    s.bind('T', `W.target ${nixString(file)}`);
    return s;
  };
  const askOne = async (expr: string): Promise<Reply | Stop> => {
    const s = current?.alive ? current : await open();
    const { replies, stopped } = await s.ask([expr]);
    if (signal?.aborted) throw new FodderError(ErrorCode.INTERRUPTED, `stopped by ${String(signal.reason)}`, {});
    return replies[0] ?? stopped!;
  };
  const messageOf = (r: Reply | Stop) => ('reason' in r ? r.message : r.ok ? r.value : r.message);
  try {
    await open();
    const shape = await askOne('T.shape');
    if ('reason' in shape || !shape.ok) {
      out.error = messageOf(shape);
      return out;
    }
    const { k, n: names } = JSON.parse(shape.value) as { k: string; n: string[] };
    if (k === 'error') {
      const why = await askOne('T.explain null');
      out.error = 'reason' in why || !why.ok ? messageOf(why) : 'evaluating it failed inside tryEval, but not when evaluated alone';
      return out;
    }
    if (k !== 'drv' && k !== 'list' && k !== 'set') {
      out.error = `it is ${article(k)}, not a derivation, a list or a set of them`;
      return out;
    }
    // every member at once; when one fails uncatchably, each alone
    const batch = await askOne('T.batch');
    const records: (Record_ | Reply | Stop)[] =
      !('reason' in batch) && batch.ok ? (JSON.parse(batch.value) as Record_[]) : await askEach(names.length, (i) => askOne(`T.one ${i}`));
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      if ('reason' in r) {
        out.failures.push({ name: names[i], errorKind: r.reason === 'died' ? 'uncatchable' : r.reason, error: r.message });
      } else if ('ok' in r) {
        if (r.ok) records[i] = JSON.parse(r.value) as Record_;
        else out.failures.push({ name: names[i], errorKind: 'uncatchable', error: r.message });
      }
    }
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      if (!('m' in r)) continue;
      if (r.s === 'drv') {
        try {
          out.members.push({ name: r.m, drvPath: r.d!, fods: read(r.d!) });
        } catch (err) {
          out.failures.push({ name: r.m, errorKind: 'internal', error: `fodder could not read its .drv closure: ${(err as Error).message}` });
        }
      } else if (r.s === 'error') {
        const why = await askOne(`T.explain ${i}`);
        const what = r.e === 'drvPath' ? 'its drvPath' : 'its value';
        const error = 'reason' in why || !why.ok ? messageOf(why) : `evaluating ${what} failed inside tryEval, but not when evaluated alone`;
        out.failures.push({ name: r.m, errorKind: 'catchable', error });
      } else {
        out.failures.push({ name: r.m, errorKind: 'not-derivation', error: `it is ${article(r.s === 'set' ? 'set' : r.t!)}, not a derivation` });
      }
    }
    return out;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    (current as NixSession | null)?.close();
  }
}

async function askEach<T>(n: number, ask: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(await ask(i));
  return out;
}

/** `a set`, `an int`: a Nix type with its article. */
function article(type: string): string {
  return `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
}
