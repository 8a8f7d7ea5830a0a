/**
 * `git`: fetchgit as nixpkgs' nix-prefetch-git does it: a fresh repository, a shallow fetch of
 * the exact rev (a full fetch when the server cannot serve a rev by hash, e.g. dumb HTTP), a
 * checkout, `git submodule update --init --recursive` when fetchSubmodules, then every `.git`
 * removed and the tree NAR-hashed.
 *
 * Exact for a plain fetchgit: no leaveDotGit, deepClone, fetchTags, LFS, sparse checkout,
 * rootDir, preFetch or postFetch. git runs with no user or system configuration, no hooks, no
 * prompts, only http(s)/git transports (file:// when allowed), and fsck of received objects.
 */
import { mkdir, readdir, lstat, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Fod } from '../../graph/types.js';
import { narHashThreaded as narHash } from '../../mirror/nar-hash-threaded.js';
import type { Outcome } from '../outcome.js';
import { singleTry, unverifiable, type FetchContext, type FetcherPlugin, type FetchVerdict, type FodEnv } from '../types.js';
import { DEFAULT_UNPACK_LIMITS, normaliseTree, type UnpackLimits } from '../unpack.js';
import { ErrorCode, FodderError } from '../../errors.js';
import { runProcess } from '../../process.js';

/** git's environment with no user or system config, and never asking for a password. */
export function isolatedGitEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    LC_ALL: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: 'false',
    SSH_ASKPASS: 'false',
  };
}

export interface GitFetcherOptions {
  /** `git` binary */
  git?: string;
  /** URL prefixes to rewrite (git's `url.<to>.insteadOf=<from>`), applied to submodules too */
  rewrites?: { from: string; to: string }[];
  /** allow file:// repositories (tests, local mirrors) */
  allowFile?: boolean;
  /** each git command is killed after this long */
  timeoutMs?: number;
  /** seconds below 1 KiB/s before an HTTP transfer is abandoned */
  lowSpeedTimeSec?: number;
  limits?: UnpackLimits;
}

const SHA1 = /^[0-9a-f]{40}$/;

/** Why a fetchgit FOD is not reproduced exactly, or null when it is. */
export function gitInexact(fod: Fod, env: FodEnv): string | null {
  const g = fod.git;
  if (!g) return 'not a fetchgit derivation';
  if (g.leaveDotGit) return 'leaveDotGit: .git is not reproducible';
  if (g.deepClone) return 'deepClone';
  if (g.lfs) return 'fetchLFS';
  if (g.sparseCheckout.length > 0 || (env.sparseCheckout ?? '').trim() !== '') return 'sparse checkout';
  if ((env.rootDir ?? '') !== '') return 'rootDir';
  if (env.fetchTags === '1') return 'fetchTags';
  if ((env.preFetch ?? '').trim() !== '') return 'custom preFetch';
  return null;
}

export function createGitFetcher(options: GitFetcherOptions = {}): FetcherPlugin {
  const gitBin = options.git ?? 'git';
  const timeoutMs = options.timeoutMs ?? 30 * 60_000;
  const limits = options.limits ?? DEFAULT_UNPACK_LIMITS;
  const allowed = ['http', 'https', 'git', ...(options.allowFile ? ['file'] : [])];

  const canFetch: FetcherPlugin['canFetch'] = (fod, env) => {
    if (fod.hash.mode !== 'recursive') return { ok: false, reason: 'flat hash', code: 'not-exact' };
    if ((env.postFetch ?? '').trim() !== '') return { ok: false, reason: 'fetchgit with a custom postFetch', code: 'custom-postFetch' };
    const why = gitInexact(fod, env);
    if (why) return { ok: false, reason: why, code: 'not-exact' };
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(fod.git!.url)?.[1]?.toLowerCase();
    if (!scheme || !allowed.includes(scheme)) {
      return { ok: false, reason: `git URL scheme ${scheme ?? '(scp-like ssh)'} is not fetched by fodder`, code: 'not-exact' };
    }
    return { ok: true };
  };

  return {
    id: 'git',
    certainty: 'exact',
    canFetch,

    async fetch(fod: Fod, ctx: FetchContext): Promise<FetchVerdict> {
      const can = canFetch(fod, ctx.env);
      if (!can.ok) return unverifiable(can.code, can.reason);
      const g = fod.git!;
      const home = join(ctx.workDir, 'home');
      const dir = join(ctx.workDir, 'out');
      await rm(dir, { recursive: true, force: true });
      await mkdir(home, { recursive: true });
      const config = [
        'protocol.allow=never',
        ...allowed.map((s) => `protocol.${s}.allow=always`),
        'transfer.fsckObjects=true',
        'core.hooksPath=/dev/null',
        'advice.detachedHead=false',
        'init.defaultBranch=fetchgit',
        'gc.auto=0',
        'credential.helper=',
        'http.lowSpeedLimit=1024',
        `http.lowSpeedTime=${options.lowSpeedTimeSec ?? 60}`,
        ...(options.rewrites ?? []).map((r) => `url.${r.to}.insteadOf=${r.from}`),
      ];
      // and no protocol a package's URL could ask for beyond the allowed ones
      const env = { ...isolatedGitEnv(home), GIT_PROTOCOL_FROM_USER: '0' };
      const git = (args: string[], cwd = dir) => runGit(gitBin, [...config.flatMap((c) => ['-c', c]), ...args], { cwd, env, timeoutMs, signal: ctx.signal });
      const attempt = (outcome: Outcome, t0: number, message: string | null) => ctx.recordAttempt(singleTry(g.url, outcome, t0, null, message));

      const t0 = Date.now();
      await mkdir(dir);
      const must = async (args: string[]) => {
        const r = await git(args);
        if (r.code !== 0) throw new FodderError(ErrorCode.GIT_FAILED, `git ${args[0]}: ${r.stderr}`, { stderr: r.stderr });
      };
      await must(['init', '-q', '--template=', '.']);
      await must(['remote', 'add', 'origin', g.url]);
      // as nix-prefetch-git: a shallow fetch of the rev, else everything
      const want = SHA1.test(g.rev) ? g.rev : `+${g.rev}`;
      let r = await git(['fetch', '-q', '--depth', '1', 'origin', want]);
      if (r.code !== 0 && SHA1.test(g.rev)) r = await git(['fetch', '-q', '-t', 'origin']);
      if (r.code !== 0) {
        const outcome = gitOutcome(r.stderr);
        attempt(outcome, t0, r.stderr);
        await rm(dir, { recursive: true, force: true });
        if (outcome === 'error' && /fsck|object .* is corrupt|bad object/i.test(r.stderr)) {
          return unverifiable('unpack-refused', `git refused the objects of ${g.url}: ${lastLine(r.stderr)}`);
        }
        return { ok: false, verdict: 'dead', mismatch: null, message: `${g.url}: ${lastLine(r.stderr)}` };
      }
      const target = SHA1.test(g.rev) ? g.rev : 'FETCH_HEAD';
      const type = await git(['cat-file', '-t', target]);
      if (type.code !== 0 || !['commit', 'tag'].includes(type.stdout.trim())) {
        attempt('http-404', t0, `rev ${g.rev} not found`);
        await rm(dir, { recursive: true, force: true });
        return { ok: false, verdict: 'dead', mismatch: null, message: `${g.url}: rev ${g.rev} is not in the repository` };
      }
      const co = await git(['checkout', '-q', '-b', 'fetchgit', target]);
      if (co.code !== 0) {
        attempt('error', t0, co.stderr);
        await rm(dir, { recursive: true, force: true });
        return unverifiable('unpack-refused', `${g.url}: git refused to check out ${g.rev}: ${lastLine(co.stderr)}`);
      }
      if (g.submodules) {
        let s = await git(['submodule', 'update', '--init', '--recursive', '-j', '1', '--depth', '1']);
        if (s.code !== 0) s = await git(['submodule', 'update', '--init', '--recursive', '-j', '1']);
        if (s.code !== 0) {
          attempt(gitOutcome(s.stderr), t0, s.stderr);
          await rm(dir, { recursive: true, force: true });
          return { ok: false, verdict: 'dead', mismatch: null, message: `${g.url}: submodules: ${lastLine(s.stderr)}` };
        }
      }
      attempt('ok', t0, null);
      await removeDotGit(dir);
      try {
        await normaliseTree(dir, limits);
      } catch (e) {
        await rm(dir, { recursive: true, force: true });
        if (e instanceof FodderError && e.code.startsWith('UNPACK_')) return unverifiable('unpack-refused', `${g.url}: ${e.message}`);
        throw e;
      }
      const h = await narHash(dir, fod.hash.algo);
      if (h.hex !== fod.hash.hex) {
        await rm(dir, { recursive: true, force: true });
        return {
          ok: false,
          verdict: 'broken-hash',
          mismatch: { url: g.url, urlIndex: 0, actual: { algo: fod.hash.algo, hex: h.hex } },
          message: `${g.url} at ${g.rev}: the checkout has NAR ${fod.hash.algo}:${h.hex}, expected ${fod.hash.algo}:${fod.hash.hex}`,
        };
      }
      const nar = fod.hash.algo === 'sha256' ? h : await narHash(dir, 'sha256');
      return { ok: true, url: g.url, urlIndex: 0, output: { type: 'tree', path: dir, narHash: nar.hex, narSize: nar.size } };
    },
  };
}

/** `find DIR -name .git | xargs rm -rf`, without following symlinks. */
async function removeDotGit(root: string): Promise<void> {
  const stack = [Buffer.from(root)];
  while (stack.length > 0) {
    const d = stack.pop()!;
    for (const name of await readdir(d, { encoding: 'buffer' })) {
      const p = Buffer.concat([d, Buffer.from('/'), name]);
      if (name.toString('latin1') === '.git') {
        await rm(p, { recursive: true, force: true });
        continue;
      }
      if ((await lstat(p)).isDirectory()) stack.push(p);
    }
  }
}

interface GitRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function runGit(bin: string, args: string[], o: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; signal: AbortSignal }): Promise<GitRun> {
  const r = await runProcess(bin, args, { ...o, stderrLimit: { max: 65536 } });
  return { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr };
}

function lastLine(s: string): string {
  return s.split('\n').filter(Boolean).pop() ?? s;
}

/** git's complaint, as one of the fetch outcomes. */
export function gitOutcome(stderr: string): Outcome {
  if (/Could not resolve host/i.test(stderr)) return 'dns';
  if (/Connection refused|Failed to connect|Couldn't connect/i.test(stderr)) return 'connect';
  if (/timed out|killed after|too slow/i.test(stderr)) return 'timeout';
  if (/SSL|certificate/i.test(stderr)) return 'tls';
  if (/\b404\b|not found|does not appear to be a git repository|couldn't find remote ref/i.test(stderr)) return 'http-404';
  if (/\b5\d\d\b/.test(stderr)) return 'http-5xx';
  if (/transport .* not allowed/i.test(stderr)) return 'refused-scheme';
  return 'error';
}

export const gitFetcher = createGitFetcher();
