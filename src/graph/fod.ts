import { FodderError, ErrorCode } from '../errors.js';
import type { Fod, FodKind, GitSource } from './types.js';
import { type Derivation, drvName } from '../nix-formats/drv-parse.js';
import type { HashAlgo, HashMode } from '../nix-formats/hash.js';
import { readArchiveScript } from './archive-script.js';

/** site name -> URL prefixes, as in the package set's pkgs/build-support/fetchurl/mirrors.nix */
export type Mirrors = Record<string, string[]>;

const ALGOS: Record<string, HashAlgo> = { md5: 'md5', sha1: 'sha1', sha256: 'sha256', sha512: 'sha512' };

/**
 * The classifier's version: raise it whenever `fodFromDrv` classes some FOD differently, so
 * that a database recorded by an older fodder re-classes its FODs (src/db/reclassify.ts).
 * 2: archives recognised by what their postFetch does (fetchzip of every nixpkgs version, a tar
 * extraction into $out).
 */
export const CLASSIFIER_VERSION = 2;

/** Whether the fetchers need a FOD's whole environment: every kind but a plain `url` download. */
export function needsEnv(fod: Fod): boolean {
  return fod.kind !== 'url' || fod.postFetch;
}

/** True when the derivation has a fixed output (both hash fields set on `out`). */
export function isFixedOutput(drv: Derivation): boolean {
  return drv.outputs.length === 1 && drv.outputs[0].hash !== '' && drv.outputs[0].hashAlgo !== '';
}

/**
 * Reads a FOD's record from its parsed .drv. The hash comes from the output tuple, which
 * Nix always writes as lowercase base16 whatever spelling the expression used.
 */
export function fodFromDrv(drvPath: string, drv: Derivation, mirrors: Mirrors): Fod {
  const out = drv.outputs[0];
  const recursive = out.hashAlgo.startsWith('r:');
  const algoName = recursive ? out.hashAlgo.slice(2) : out.hashAlgo;
  const algo = ALGOS[algoName];
  if (!algo) {
    throw new FodderError(ErrorCode.DRV_PARSE, `${drvPath}: unknown output hash algorithm "${out.hashAlgo}"`, { drvPath });
  }
  const mode: HashMode = recursive ? 'recursive' : 'flat';
  const hex = out.hash.toLowerCase();
  const env = drv.env;
  const urls = urlsOf(env);
  const git = gitOf(env, drv);
  const kind = kindOf(drv, urls, git, mode);
  return {
    drvPath,
    outPath: out.path,
    name: env.name ?? drvName(drvPath),
    kind,
    hash: { algo, mode, hex, sri: `${algo}-${Buffer.from(hex, 'hex').toString('base64')}` },
    urls,
    resolvedUrls: resolveUrls(urls, mirrors),
    git,
    postFetch: hasCustomPostFetch(env, kind),
  };
}

/** URLs as written: nixpkgs' fetchurl keeps them space-separated in `urls`; builtin:fetchurl uses `url`. */
function urlsOf(env: Record<string, string>): string[] {
  const split = (s: string) => s.split(/\s+/).filter(Boolean);
  if (env.urls !== undefined && env.urls.trim() !== '') return split(env.urls);
  if (env.url !== undefined && env.url.trim() !== '') return split(env.url);
  return [];
}

function bool(v: string | undefined): boolean {
  return v === '1' || v === 'true';
}

function gitOf(env: Record<string, string>, drv: Derivation): GitSource | null {
  if (!env.url || !env.rev) return null;
  const looksGit =
    'fetchSubmodules' in env || 'leaveDotGit' in env || 'deepClone' in env || /fetchgit|nix-prefetch-git/.test(drv.builder + ' ' + drv.args.join(' '));
  if (!looksGit) return null;
  return {
    url: env.url,
    rev: env.rev,
    submodules: bool(env.fetchSubmodules),
    deepClone: bool(env.deepClone),
    leaveDotGit: bool(env.leaveDotGit),
    lfs: bool(env.fetchLFS),
    sparseCheckout: (env.sparseCheckout ?? '').split(/\s+/).filter(Boolean),
  };
}

const PATCH_MARK = /\blsdiff\b[\s\S]*\bfilterdiff\b/;
/** a script that calls stdenv's unpackFile: an archive unpacked in some way fodder may not know */
const UNPACKS = /\bunpackFile\b/;

function kindOf(drv: Derivation, urls: string[], git: GitSource | null, mode: HashMode): FodKind {
  const env = drv.env;
  if (git) return 'git';
  const builderText = drv.builder + ' ' + drv.args.join(' ');
  if (isRequireFile(drv)) return 'manual';
  const tools = `${env.nativeBuildInputs ?? ''} ${builderText}`;
  if (env.url && env.rev && ('subrepoClause' in env || 'fetchSubrepos' in env || /-mercurial-|fetchhg/.test(tools))) return 'hg';
  if (env.url && env.rev && ('ignoreExternals' in env || /-subversion-|fetchsvn/.test(tools))) return 'svn';
  if (urls.length === 0) return 'vendor';
  const postFetch = env.postFetch ?? '';
  if (mode === 'recursive' && (readArchiveScript(env) !== null || UNPACKS.test(postFetch))) return 'archive';
  if (PATCH_MARK.test(postFetch)) return 'patch';
  if ('urls' in env || drv.builder === 'builtin:fetchurl') return 'url';
  return 'other';
}

/** requireFile: a FOD whose builder is the `restrict-message` script (or which carries its message). */
function isRequireFile(drv: Derivation): boolean {
  if (drv.inputDrvs.some((i) => i.path.endsWith('-restrict-message.drv'))) return true;
  if (/restrict-message/.test(drv.builder)) return true;
  return drv.inputSrcs.some((s) => s.endsWith('-restrict-message'));
}

/**
 * Whether a postFetch beyond the fetcher's own runs: for an archive, statements after the
 * recognised unpacking (see archive-script.ts); fetchpatch's own script is recognised below.
 */
export function hasCustomPostFetch(env: Readonly<Record<string, string>>, kind: FodKind): boolean {
  const text = (env.postFetch ?? '').trim();
  if (text === '') return false;
  if (kind === 'archive') return (readArchiveScript(env)?.user.length ?? 1) > 0;
  if (kind === 'patch') return patchUserPart(text).trim() !== '';
  return true;
}

/**
 * What a user appended to fetchpatch's own script. Current nixpkgs ends its script with the
 * "Check your includes and excludes" check (then, with `revert`, an interdiff); older nixpkgs
 * ends with `mv "$tmpfile" "$out"` after filterdiff.
 */
function patchUserPart(text: string): string {
  let rest: string;
  const check = text.lastIndexOf('Check your includes and excludes.');
  if (check >= 0) {
    const fi = /\n\s*fi\s*(\n|$)/.exec(text.slice(check));
    if (!fi) return text;
    rest = text.slice(check + fi.index + fi[0].length);
  } else {
    const mv = text.indexOf('mv "$tmpfile" "$out"', Math.max(0, text.lastIndexOf('filterdiff')));
    if (mv < 0) return text;
    rest = text.slice(mv + 'mv "$tmpfile" "$out"'.length);
  }
  return rest
    .split('\n')
    .filter((l) => !/^\s*\S*interdiff"? "\$out" \/dev\/null > "\$tmpfile"\s*$/.test(l) && !/^\s*mv "\$tmpfile" "\$out"\s*$/.test(l))
    .join('\n');
}

/** Expands `mirror://site/path` into every prefix of `site`, in order; other URLs pass through. */
export function resolveUrls(urls: string[], mirrors: Mirrors): string[] {
  const out: string[] = [];
  for (const url of urls) {
    const m = /^mirror:\/\/([^/]+)\/(.*)$/.exec(url);
    if (!m) {
      out.push(url);
      continue;
    }
    const prefixes = mirrors[m[1]];
    if (!prefixes || prefixes.length === 0) continue;
    for (const prefix of prefixes) out.push(prefix.endsWith('/') ? prefix + m[2] : `${prefix}/${m[2]}`);
  }
  return [...new Set(out)];
}
