/**
 * `nix`: the fallback for every FOD the native plug-ins do not reproduce exactly (patches,
 * vendored dependencies, custom postFetch, hg, svn, ...). It realises the FOD's .drv with the
 * user's Nix and takes the output, so Nix itself checks the hash; a `hash mismatch in
 * fixed-output derivation` for this derivation is the only failure that is a verdict on the
 * source (`broken-hash`). Anything else (a builder input that cannot be built or substituted,
 * a timeout) is `unverifiable`.
 *
 * The .drv files come from the crawl's database, which keeps every .drv text and input source:
 * the closure of the FOD's .drv is written in the export format and given to `nix-store
 * --import` of the store that builds, unless it is there already. A crawl by an older fodder has no texts; its drv
 * stores (binary-cache directories, see src/graph/store-slots.ts) serve instead
 * (`nix-store --export | nix-store --import`). The output is read back with `nix store dump-path` into the work directory, since the
 * mirror must not move files out of a Nix store. Off unless enabled: building needs the
 * builder's own inputs (a stdenv from a binary cache or built locally).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, FodderError } from '../../errors.js';
import { runProcess, startProcess } from '../../process.js';
import { exportArchive, type ImportEntry } from '../../nix-formats/drv-export.js';
import { HASH_ALGOS, parseHash, type HashAlgo } from '../../nix-formats/hash.js';
import type { Fod } from '../../graph/types.js';
import { narHash, unpackNar } from '../../nix-formats/nar.js';
import type { Digests } from '../../mirror/types.js';
import { singleTry, unverifiable, type FetchContext, type FetcherPlugin, type FetchVerdict } from '../types.js';

export interface NixFetcherOptions {
  /** the store that builds (`--store`); null or absent: the user's default store */
  store?: string | null;
  /** the closure of a .drv (.drv files and input sources) from the crawl's database, dependencies first; null when it lacks a part */
  closureOf?: (drvPath: string) => ImportEntry[] | null;
  /** drv store directories holding the crawl's .drv files (see crawlDrvStores), for crawls whose database lacks the texts */
  drvStores?: string[];
  /** `--option NAME VALUE` pairs for every Nix call (substituters, sandbox-paths, ...) */
  options?: Record<string, string>;
  /** a realisation is killed after this long (`fetch.nix.timeoutSec`) */
  timeoutMs: number;
}

/** The crawl's `--store` and its per-worker stores (see src/graph/store-slots.ts). */
export { crawlDrvStores } from '../../graph/store-slots.js';
import { drvStoreHas, drvStoreUrl } from '../../graph/store-slots.js';

/** Nix's standard error can be a whole build log: about the last 100,000 characters are kept. */
const NIX_STDERR = { max: 100_000, keep: 'tail' } as const;

function runNix(cmd: string, args: string[], o: { timeoutMs: number; signal: AbortSignal }) {
  return runProcess(cmd, args, { ...o, stderrLimit: NIX_STDERR });
}

/** A Nix command whose stdout is consumed as a stream (large exports and dumps never sit in memory). */
function streamNix(cmd: string, args: string[], o: { stdin?: NodeJS.ReadableStream; timeoutMs: number; signal: AbortSignal }) {
  const p = startProcess(cmd, args, {
    stdin: (o.stdin as Readable | undefined) ?? 'ignore',
    stdout: 'pipe',
    signal: o.signal,
    timeoutMs: o.timeoutMs,
    stderrLimit: NIX_STDERR,
  });
  const done = p.exit.then((e) => ({ code: e.code, stderr: p.stderr() }));
  done.catch(() => undefined);
  return { stdout: p.stdout!, done, kill: () => p.kill() };
}

/** The `got:` hash of Nix's "hash mismatch in fixed-output derivation '<drv>'" for `drvPath`, if that is what failed. */
export function nixHashMismatch(stderr: string, drvPath: string, algo: HashAlgo): { algo: HashAlgo; hex: string } | null {
  const re = /hash mismatch in fixed-output derivation '([^']+)':\s*specified:\s*(\S+)\s*got:\s*(\S+)/g;
  for (const m of stderr.matchAll(re)) {
    if (m[1] !== drvPath) continue;
    try {
      const h = parseHash(m[3], m[3].includes(':') || m[3].includes('-') ? undefined : algo);
      return { algo: h.algo, hex: h.hex };
    } catch {
      return null;
    }
  }
  return null;
}

export function createNixFetcher(options: NixFetcherOptions): FetcherPlugin {
  const { timeoutMs } = options;
  const storeArgs = options.store ? ['--store', options.store] : [];
  const optionArgs = Object.entries(options.options ?? {}).flatMap(([k, v]) => ['--option', k, v]);
  const nixStore = (args: string[], o: { signal: AbortSignal; store?: string[] }) =>
    runNix('nix-store', [...(o.store ?? storeArgs), ...optionArgs, ...args], { timeoutMs, signal: o.signal });
  // `nix-store --dump` reads the path from the real filesystem even with --store; `nix store
  // dump-path` asks the store (chroot store, daemon) for the NAR
  const dump = (path: string, signal: AbortSignal) =>
    streamNix('nix', ['--extra-experimental-features', 'nix-command', 'store', 'dump-path', ...storeArgs, ...optionArgs, path], { timeoutMs, signal });

  /** Makes the .drv closure valid in the building store; false when no store has it. */
  async function ensureDrv(drvPath: string, signal: AbortSignal): Promise<boolean> {
    const valid = await nixStore(['--check-validity', drvPath], { signal });
    if (valid.code === 0) return true;
    const closure = options.closureOf?.(drvPath);
    if (closure) {
      const importer = streamNix('nix-store', [...storeArgs, ...optionArgs, '--import'], { stdin: Readable.from([exportArchive(closure)]), timeoutMs, signal });
      importer.stdout.resume();
      const i = await importer.done;
      if (i.code !== 0)
        throw new FodderError(ErrorCode.NIX_FAILED, `nix-store --import of ${closure.length} store paths from the database: ${i.stderr}`, { drvPath });
      return true;
    }
    for (const s of options.drvStores ?? []) {
      if (!drvStoreHas(s, drvPath)) continue;
      const from = ['--store', drvStoreUrl(s)];
      const closure = await nixStore(['--query', '--requisites', drvPath], { signal, store: from });
      if (closure.code !== 0) continue;
      const paths = closure.stdout.toString().split('\n').filter(Boolean);
      const exporter = streamNix('nix-store', [...from, ...optionArgs, '--export', ...paths], { timeoutMs, signal });
      const importer = streamNix('nix-store', [...storeArgs, ...optionArgs, '--import'], { stdin: exporter.stdout, timeoutMs, signal });
      importer.stdout.resume();
      const [e, i] = await Promise.all([exporter.done, importer.done]);
      if (e.code !== 0) continue;
      if (i.code !== 0) throw new FodderError(ErrorCode.NIX_FAILED, `nix-store --import: ${i.stderr}`, { drvPath });
      return true;
    }
    return false;
  }

  return {
    id: 'nix',
    certainty: 'exact',

    canFetch(fod) {
      if (fod.kind === 'manual') return { ok: false, reason: 'requireFile: only a person can add this file', code: 'not-exact' };
      return { ok: true };
    },

    async fetch(fod: Fod, ctx: FetchContext): Promise<FetchVerdict> {
      if (fod.kind === 'manual') return unverifiable('not-exact', 'requireFile: only a person can add this file');
      if (!(await ensureDrv(fod.drvPath, ctx.signal))) {
        return unverifiable(
          'drv-missing',
          `${fod.drvPath}: the database holds no .drv text of it (or of its closure), and it is in none of the drv stores ${(options.drvStores ?? []).join(', ') || '(none given)'}`,
        );
      }
      const t0 = Date.now();
      const built = await nixStore(['--realise', fod.drvPath, '--add-root', join(ctx.workDir, 'result')], { signal: ctx.signal });
      const record = (outcome: 'ok' | 'hash-mismatch' | 'error', message: string | null, actual: { algo: HashAlgo; hex: string } | null) =>
        ctx.recordAttempt(singleTry(`nix:${fod.drvPath}`, outcome, t0, actual, message));
      if (built.code !== 0) {
        const actual = nixHashMismatch(built.stderr, fod.drvPath, fod.hash.algo);
        if (actual) {
          const hex = actual.algo === fod.hash.algo ? actual.hex : '';
          record('hash-mismatch', lastLines(built.stderr), actual);
          return {
            ok: false,
            verdict: 'broken-hash',
            mismatch: hex ? { url: `nix:${fod.drvPath}`, urlIndex: 0, actual } : null,
            message: `Nix built ${fod.drvPath} and got ${actual.algo}:${actual.hex}, expected ${fod.hash.algo}:${fod.hash.hex}`,
          };
        }
        record('error', lastLines(built.stderr), null);
        return unverifiable('nix-failed', `nix-store --realise ${fod.drvPath}: ${nixErrors(built.stderr)}`);
      }
      record('ok', null, null);
      return takeOutput(fod, ctx, dump);
    },
  };
}

type Dump = (path: string, signal: AbortSignal) => ReturnType<typeof streamNix>;

/** Copies the realised output into the work dir through `nix store dump-path`, hashing the NAR on the way, and checks it. */
async function takeOutput(fod: Fod, ctx: FetchContext, dump: Dump): Promise<FetchVerdict> {
  const out = join(ctx.workDir, 'out');
  await rm(out, { recursive: true, force: true });
  const d = dump(fod.outPath, ctx.signal);
  const sha256 = createHash('sha256');
  let narSize = 0;
  const hashed = (async function* () {
    for await (const c of d.stdout) {
      sha256.update(c);
      narSize += c.length;
      yield c;
    }
  })();
  try {
    await unpackNar(hashed, out);
  } catch (e) {
    d.kill();
    const r = await d.done;
    if (r.code !== 0) return unverifiable('nix-failed', `nix store dump-path ${fod.outPath}: ${lastLines(r.stderr)}`);
    throw e;
  }
  const r = await d.done;
  if (r.code !== 0) return unverifiable('nix-failed', `nix store dump-path ${fod.outPath}: ${lastLines(r.stderr)}`);
  const mismatch = () => new FodderError(ErrorCode.NIX_OUTPUT_MISMATCH, `${fod.outPath} does not have the declared hash`, { outPath: fod.outPath });
  if (fod.hash.mode === 'flat') {
    const digests = await fileDigests(out);
    if (digests[fod.hash.algo] !== fod.hash.hex) throw mismatch();
    return { ok: true, url: `nix:${fod.drvPath}`, urlIndex: 0, output: { type: 'file', path: out, size: (await stat(out)).size, digests } };
  }
  const narSha256 = sha256.digest('hex');
  const declared = fod.hash.algo === 'sha256' ? narSha256 : (await narHash(out, fod.hash.algo)).hex;
  if (declared !== fod.hash.hex) throw mismatch();
  return { ok: true, url: `nix:${fod.drvPath}`, urlIndex: 0, output: { type: 'tree', path: out, narHash: narSha256, narSize } };
}

async function fileDigests(path: string): Promise<Digests> {
  const hashes = HASH_ALGOS.map((a) => [a, createHash(a)] as const);
  for await (const c of createReadStream(path)) for (const [, h] of hashes) h.update(c as Buffer);
  return Object.fromEntries(hashes.map(([a, h]) => [a, h.digest('hex')])) as Digests;
}

/** Nix's `error:` lines (the first one names the derivation that failed and why), or the last lines. */
function nixErrors(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const errors = lines.filter((l) => l.startsWith('error:'));
  const firstError = lines.findIndex((l) => l.startsWith('error:'));
  const context = firstError > 0 ? lines[firstError - 1] : null; // the builder's own last words
  return [...(context && !context.startsWith('building') ? [context] : []), ...errors].slice(0, 4).join('; ') || lastLines(stderr);
}

function lastLines(s: string, n = 6): string {
  return s
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-n)
    .join('\n');
}
